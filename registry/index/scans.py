"""Each manifest's scan summary in the index: the `scans` table and the severity of
every search document.

`scans` holds one row per scanned manifest digest (a result is per digest: a manifest's
bytes name its layers, so one scan holds in every repository that has it), written by
`ScanSeen` and removed by `ScanForgotten` events (records.py) that the scan room sends
through the index's queued hooks (registry/scan/worker.py) and that its catch-up pass
sends for what the hooks missed (registry/scan/summary.py). A row synced later than an
event's wins, so an old read never overwrites a newer write.

`search_docs.severity` is a document's worst level as a number (RANKS), kept in the
same transaction as the rows it mirrors: a manifest's own, or for an index of images
the worst of its children's (an index is found for its children, index/search.py), and
NULL while it (or one of those children) is not scanned. Search filters and shows it.
"""

from __future__ import annotations

import json
import sqlite3

from registry.index.records import ScanForgotten, ScanRow, ScanSeen, ScanSummary

# Levels from best to worst: "none" (scanned and matched, no vulnerability), "unknown"
# (vulnerabilities whose advisories give no severity), then the CVSS levels.
SEVERITIES = ("none", "unknown", "low", "medium", "high", "critical")
RANKS = {level: rank for rank, level in enumerate(SEVERITIES)}
UNMATCHED = -1  # scanned, not matched against advisories yet: no max_severity


def rank_of(level: str | None) -> int:
    """The number stored for `level` (None: UNMATCHED; an unknown word: "unknown")."""
    if level is None:
        return UNMATCHED
    return RANKS.get(level, RANKS["unknown"])


def level_of(rank: int | None) -> str | None:
    """The word for a stored rank; None for not scanned or not matched."""
    if rank is None or rank < 0 or rank >= len(SEVERITIES):
        return None
    return SEVERITIES[rank]


def _children(conn: sqlite3.Connection, repo: str, digest: str) -> list[str]:
    """The manifests of `repo` that the index `digest` lists (none for an image)."""
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT p.digest FROM platforms p JOIN manifests m ON m.repo = p.repo"
        " AND m.digest = p.digest WHERE p.repo = ? AND p.declared_by = ? AND p.digest != ?"
        " ORDER BY p.digest", [repo, digest, digest])]


def _rows(conn: sqlite3.Connection, digests: list[str]) -> dict[str, tuple[int, str, float]]:
    out: dict[str, tuple[int, str, float]] = {}
    for i in range(0, len(digests), 500):
        part = digests[i:i + 500]
        for d, rank, counts, at in conn.execute(
                "SELECT digest, severity, counts, scanned_at FROM scans WHERE digest IN"
                f" ({','.join('?' * len(part))})", part):
            out[d] = (rank, counts, at)
    return out


def _combined(conn: sqlite3.Connection, repo: str, digest: str
              ) -> tuple[int, dict[str, int], float] | None:
    """(rank, counts, scanned_at) of `repo@digest` as its search document shows it; None
    while it, or for an index one of its children, has no result."""
    members = _children(conn, repo, digest) or [digest]
    rows = _rows(conn, members)
    if len(rows) < len(members):
        return None
    ranks = [r[0] for r in rows.values()]
    # One child not matched yet: the whole is not known to be clean or how bad.
    rank = UNMATCHED if UNMATCHED in ranks else max(ranks)
    counts: dict[str, int] = {}
    for _, raw, _ in rows.values():
        try:
            part = json.loads(raw or "{}")
        except ValueError:
            part = {}
        for level, n in part.items() if isinstance(part, dict) else ():
            if level in RANKS and isinstance(n, int):
                counts[level] = counts.get(level, 0) + n
    return rank, counts, max(r[2] or 0.0 for r in rows.values())


def summary(conn: sqlite3.Connection, repo: str, digest: str) -> ScanSummary | None:
    """The scan summary of `repo@digest` (Index.scan_summary); None when `repo` holds no
    such manifest as far as the index knows."""
    if conn.execute("SELECT 1 FROM manifests WHERE repo = ? AND digest = ?",
                    [repo, digest]).fetchone() is None:
        return None
    found = _combined(conn, repo, digest)
    if found is None:
        return None
    rank, counts, at = found
    return ScanSummary(level_of(rank), {level: counts.get(level, 0) for level in SEVERITIES
                                        if level != "none"}, at)


def severity(conn: sqlite3.Connection, repo: str, digest: str) -> int | None:
    """The stored rank of `repo@digest`'s document (None: not scanned)."""
    found = _combined(conn, repo, digest)
    return None if found is None else found[0]


def set_document(conn: sqlite3.Connection, repo: str, digest: str) -> None:
    """Bring the severity of `repo@digest`'s document up to date (after its rows)."""
    conn.execute("UPDATE search_docs SET severity = ? WHERE kind != 'spack' AND repo = ?"
                 " AND key = ?", [severity(conn, repo, digest), repo, digest])


def _documents_of(conn: sqlite3.Connection, digest: str) -> None:
    """Every document whose severity depends on the result of `digest`: its own, in
    every repository, and those of the indexes listing it."""
    docs = conn.execute("SELECT repo, key FROM search_docs WHERE key = ? AND kind != 'spack'"
                        " UNION SELECT repo, declared_by FROM platforms WHERE digest = ?"
                        " AND declared_by != ?", [digest, digest, digest]).fetchall()
    for repo, key in docs:
        set_document(conn, repo, key)


def seen(conn: sqlite3.Connection, e: ScanSeen) -> None:
    r: ScanRow = e.row
    conn.execute(
        "INSERT INTO scans (digest, severity, counts, packages, scanned_at, synced_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET"
        " severity = excluded.severity, counts = excluded.counts,"
        " packages = excluded.packages, scanned_at = excluded.scanned_at,"
        " synced_at = excluded.synced_at WHERE excluded.synced_at >= scans.synced_at",
        [r.digest, rank_of(r.max_severity), json.dumps(r.counts, sort_keys=True), r.packages,
         r.scanned_at, r.synced_at])
    _documents_of(conn, r.digest)


def forgotten(conn: sqlite3.Connection, e: ScanForgotten) -> None:
    cur = conn.execute("DELETE FROM scans WHERE digest = ? AND synced_at < ?",
                       [e.digest, e.before])
    if cur.rowcount:
        _documents_of(conn, e.digest)


def stamps(conn: sqlite3.Connection) -> dict[str, float]:
    """Every summarised digest and when its row was synced (for the catch-up)."""
    return dict(conn.execute("SELECT digest, synced_at FROM scans"))


def holders(conn: sqlite3.Connection, digest: str) -> list[str]:
    """The repositories the index says hold manifest `digest`."""
    return [r[0] for r in conn.execute(
        "SELECT repo FROM manifests WHERE digest = ? ORDER BY repo", [digest])]
