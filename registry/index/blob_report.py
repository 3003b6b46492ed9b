"""Where a blob is used, and how much each platform shares with the others: the
queries behind `GET /api/v1/blobs/<digest>` (core/builds.py), run on the index thread.

The caller names the repositories it may look at (those the client may pull): nothing
outside them is read into the report, not even as a count.

Per platform. U is the manifests in those repositories that name the blob, R their
repositories. A manifest's platform is (os, architecture, variant, target) of its own
config's build row, else of the first index's row that lists it; a manifest with no
described build has none and is counted nowhere. For each platform P of U: `manifests`
is how many of U have P, `bytes` the total size of the distinct blobs (config and
layers) they name, `shared` the part of `bytes` in blobs that a manifest in R of a
platform other than P names too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from registry.index.builds import builds
from registry.index.records import BlobReport, ManifestUse, PlatformBytes

Key = tuple[str, str, str, str]  # os, architecture, variant, target


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def users(conn: sqlite3.Connection, digest: str) -> list[str]:
    """Every repository the blob is linked into or named by a manifest of, sorted."""
    return [r[0] for r in conn.execute(
        "SELECT repo FROM blobs WHERE digest = ? UNION "
        "SELECT repo FROM blob_refs WHERE blob = ? ORDER BY 1", [digest, digest])]


def _tags(conn: sqlite3.Connection, repo: str, digest: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT tag FROM tags WHERE repo = ? AND digest = ? ORDER BY tag", [repo, digest])]


def _platforms(conn: sqlite3.Connection, repos: Sequence[str]) -> dict[tuple[str, str], Key]:
    """The platform of every described manifest in `repos` (see the module docstring)."""
    keys: dict[tuple[str, str], Key] = {}
    for repo, digest, os_, arch, variant, target in conn.execute(
            "SELECT repo, digest, os, architecture, variant, target FROM builds "
            f"WHERE repo IN ({_marks(len(repos))}) AND error IS NULL "
            "ORDER BY source = 'index', declared_by, entry", list(repos)):
        keys.setdefault((repo, digest), (os_ or "", arch or "", variant or "", target or ""))
    return keys


def report(conn: sqlite3.Connection, digest: str, repos: Sequence[str],
           limit: int) -> BlobReport:
    """The blob's uses within `repos`, at most `limit` manifests of them."""
    repos = sorted(set(repos))
    marks = _marks(len(repos))
    linked = conn.execute(f"SELECT repo, size FROM blobs WHERE digest = ? AND repo IN ({marks})"
                          " ORDER BY repo", [digest, *repos]).fetchall()
    named = conn.execute(
        "SELECT r.repo, r.manifest, r.size, m.media_type FROM blob_refs r LEFT JOIN manifests m"
        " ON m.repo = r.repo AND m.digest = r.manifest"
        f" WHERE r.blob = ? AND r.repo IN ({marks}) ORDER BY r.repo, r.manifest LIMIT ?",
        [digest, *repos, limit + 1]).fetchall()
    truncated, named = len(named) > limit, named[:limit]
    size = linked[0][1] if linked else named[0][2] if named else None
    uses = []
    for repo, manifest, _, media_type in named:
        rows = builds(conn, repo, manifest)
        indexes = {b.declared_by: _tags(conn, repo, b.declared_by)
                   for b in rows if b.source == "index"}
        uses.append(ManifestUse(repo, manifest, media_type or "", _tags(conn, repo, manifest),
                                rows, indexes))
    return BlobReport(digest, size, [r[0] for r in linked], uses,
                      _shared(conn, [(u.repo, u.digest) for u in uses]), truncated)


def _shared(conn: sqlite3.Connection, named: list[tuple[str, str]]) -> list[PlatformBytes]:
    within = sorted({repo for repo, _ in named})
    if not within:
        return []
    keys = _platforms(conn, within)
    groups: dict[Key, list[tuple[str, str]]] = {}
    for m in named:
        if m in keys:
            groups.setdefault(keys[m], []).append(m)
    marks = _marks(len(within))
    out = []
    for key, members in sorted(groups.items()):
        sizes: dict[str, int] = {}
        for repo, manifest in members:
            for blob, size in conn.execute("SELECT blob, size FROM blob_refs WHERE repo = ? "
                                           "AND manifest = ?", [repo, manifest]):
                sizes[blob] = size or 0
        shared = 0
        for blob, size in sizes.items():
            others = conn.execute(f"SELECT repo, manifest FROM blob_refs WHERE blob = ? AND "
                                  f"repo IN ({marks})", [blob, *within])
            if any(keys.get((r, m), key) != key for r, m in others):
                shared += size
        out.append(PlatformBytes(*key, manifests=len(members), bytes=sum(sizes.values()),
                                 shared=shared))
    return out
