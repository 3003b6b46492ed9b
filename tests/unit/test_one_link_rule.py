"""Every link of a blob into a repository goes through core/mounts.py (the mount rule):
no other module calls `Blobs.link`. A new caller must use `Mounts.arrived` (its bytes
came with the request) or `Mounts.link` (a stored blob, by the caller's rights)."""

from __future__ import annotations

import ast
from pathlib import Path

import registry

ROOT = Path(registry.__file__).parent
# The rule itself, and the decorator base that forwards `link` to the service it wraps.
ALLOWED = {"core/mounts.py", "core/decorators.py", "core/blobs.py"}


def test_only_the_mount_rule_links_blobs():
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "link" \
                    and not ast.unparse(node.func.value).endswith("mounts"):
                offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not offenders, "link blobs through core.mounts.Mounts:\n" + "\n".join(offenders)
