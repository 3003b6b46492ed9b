"""The images a Spack environment needs, read from its `spack.lock`: for
`registry cache warm --spack-lock` (a node cache pulls them before a job)."""

from __future__ import annotations

import json
from pathlib import Path

from registry.spack.layout import spec_tag
from registry.spack.specs import HASH_RE, NAME_RE

LOCK_MAX = 256 << 20


class LockfileError(ValueError):
    """Not a spack.lock this can read (the message says why)."""


def spec_tags(path: str | Path) -> list[str]:
    """The OCI tags (`<name>-<version>-<hash>.spack`) of every concrete spec in
    the lockfile that a build cache can hold (externals have no binaries)."""
    try:
        raw = Path(path).read_bytes()[:LOCK_MAX + 1]
    except OSError as exc:
        raise LockfileError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > LOCK_MAX:
        raise LockfileError(f"{path}: larger than {LOCK_MAX} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise LockfileError(f"{path}: not JSON") from None
    concrete = doc.get("concrete_specs") if isinstance(doc, dict) else None
    if not isinstance(concrete, dict):
        raise LockfileError(f"{path}: no concrete_specs (is it a spack.lock?)")
    tags = []
    for h, node in concrete.items():
        if not isinstance(node, dict) or node.get("external"):
            continue
        name, version = node.get("name"), node.get("version")
        if not (isinstance(h, str) and HASH_RE.fullmatch(h) and isinstance(name, str)
                and NAME_RE.fullmatch(name) and isinstance(version, str) and version):
            raise LockfileError(f"{path}: malformed concrete spec {str(h)[:40]!r}")
        tags.append(spec_tag(name, version.lstrip("="), h))
    return sorted(tags)
