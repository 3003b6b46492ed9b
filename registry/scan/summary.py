"""Scan results summarised in the index (index/scans.py), for search and the dashboard.

Whoever writes or removes a result tells the index at once: the worker and the API's
re-match through the index's queued hooks (`IndexHooks.scan_event`, worker.py), the
command line (`registry scan`, `registry advisories import`) by applying the event to
the index file itself. What they miss (a crash between the write and the event, another
replica's writes, a file migrated from before summaries) is found by `sync`, the pass
the index's catch-up and `registry reindex` run (core/indexing.py `RoomPass`): a result
written after its row was synced is read again, a row without a result removed.

The summary: `max_severity` the worst level of the result's vulnerabilities in
index/scans.py's order (none < unknown < low < medium < high < critical; "none" when
matched and nothing found; None when never matched against advisories), and the
number of vulnerabilities per level.
"""

from __future__ import annotations

import time
from typing import Any

from registry.core.grammar import Digest
from registry.index.db import Index
from registry.index.records import ScanForgotten, ScanRow, ScanSeen
from registry.index.scans import RANKS
from registry.scan.results import ScanResults
from registry.scan.vulns import found_in

CHUNK = 500  # events per transaction


def row_of(digest: Digest, doc: dict[str, Any], synced_at: float) -> ScanRow:
    """The summary of `doc`, the stored result of `digest`."""
    counts: dict[str, int] = {}
    for found in found_in(doc):
        level = found.level if found.level in RANKS else "unknown"
        counts[level] = counts.get(level, 0) + 1
    worst = max(counts, key=RANKS.__getitem__) if counts else "none"
    matched = isinstance(doc.get("advisories"), dict)
    packages = doc.get("packages")
    scanned_at = doc.get("scanned_at")
    return ScanRow(str(digest), worst if matched else None, counts,
                   len(packages) if isinstance(packages, list) else 0,
                   float(scanned_at) if isinstance(scanned_at, int | float) else 0.0,
                   synced_at)


def seen(digest: Digest, doc: dict[str, Any]) -> ScanSeen:
    """The event for a result just written (synced now: after the write)."""
    return ScanSeen(row_of(digest, doc, time.time()))


def forgotten(digest: Digest) -> ScanForgotten:
    """The event for a result just removed."""
    return ScanForgotten(str(digest), time.time())


async def sync(results: ScanResults, index: Index) -> int:
    """Bring the index's summaries in step with the stored results; how many rows changed.
    A row synced before its file was last written is read again; a row whose file is
    gone is removed unless a newer event wrote it during the pass."""
    started = time.time()
    known = await index.scan_stamps()
    events: list[ScanSeen | ScanForgotten] = []
    changed = 0
    present: set[str] = set()
    async for digest, mtime in results.files():
        key = str(digest)
        present.add(key)
        stamp = known.get(key)
        if stamp is not None and mtime <= stamp:
            continue
        doc = await results.get(digest)
        if doc is None:
            continue
        events.append(ScanSeen(row_of(digest, doc, mtime)))
        if len(events) >= CHUNK:
            await index.apply(events)
            changed, events = changed + len(events), []
    events += [ScanForgotten(key, started) for key in sorted(set(known) - present)]
    for start in range(0, len(events), CHUNK):
        await index.apply(events[start:start + CHUNK])
    return changed + len(events)
