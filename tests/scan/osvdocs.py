"""OSV documents written for the advisory tests (the shapes the OSV databases export)."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

CVSS_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8


def advisory(ident: str, ecosystem: str, name: str, *, introduced: str = "0",
             fixed: str | None = None, last_affected: str | None = None,
             versions: list[str] | None = None, modified: str = "2024-01-01T00:00:00Z",
             **extra: Any) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    if last_affected:
        events.append({"last_affected": last_affected})
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name},
                                "ranges": [{"type": "ECOSYSTEM", "events": events}]}
    if versions is not None:
        affected["versions"] = versions
    doc = {"schema_version": "1.6.0", "id": ident, "modified": modified,
           "summary": f"{name} is vulnerable", "affected": [affected]}
    doc.update(extra)
    return doc


def git_advisory(ident: str, repo: str, tags: list[str], **extra: Any) -> dict[str, Any]:
    """A record as OSV makes of a CVE for a C library: a GIT range, the tags listed."""
    doc = {"id": ident, "modified": "2024-02-01T00:00:00Z", "aliases": [ident],
           "affected": [{"ranges": [{"type": "GIT", "repo": repo,
                                     "events": [{"introduced": "0"},
                                                {"fixed": "a" * 40}]}],
                         "versions": tags}]}
    doc.update(extra)
    return doc


def write_dir(root: str, docs: list[dict[str, Any]]) -> str:
    os.makedirs(root, exist_ok=True)
    for doc in docs:
        with open(os.path.join(root, f"{doc['id']}.json"), "w") as f:
            json.dump(doc, f)
    return root


def write_zip(path: str, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path
