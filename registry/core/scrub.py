"""Scrub: re-hash every blob in the store, find the corrupt ones and the links
that point at blobs the store does not hold (`registry scrub [--repair]`).

Blobs are content-addressed, so a blob whose bytes no longer hash to its name is
corrupt (a bad disk, an operator's mistake, a store that lost a write). With
`repair` each corrupt blob is moved to `_quarantine/<alg>/<hex>`: it is never
served again, stays for inspection, and a client that pushes it again puts good
bytes back. Links (a repository's layer or manifest revision) to a missing or
quarantined blob are listed: their manifests need a push again. The figures are
left in the store (`_scrub/last.json`) for the server's /metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from registry.core.blobs import BlobStore
from registry.core.grammar import Digest
from registry.core.hooks import NullHooks
from registry.core.protocols import Blobs
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound, StorageError

log = logging.getLogger("registry.scrub")


@dataclass
class ScrubReport:
    """What a scrub found; `clean` when nothing."""

    blobs: int = 0
    bytes: int = 0
    corrupt: list[dict[str, str]] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.corrupt or self.missing or self.unreadable)


async def _actual(blobs: Blobs, digest: Digest) -> str:
    h = hashlib.new(digest.algorithm)
    async for chunk in blobs.reader(digest):
        # Hashing megabytes holds the loop for milliseconds: a thread does it.
        await asyncio.to_thread(h.update, chunk)
    return f"{digest.algorithm}:{h.hexdigest()}"


async def scrub(driver: Driver, repair: bool = False, jobs: int = 4,
                progress: Callable[[int, int], None] | None = None,
                blobs: Blobs | None = None) -> ScrubReport:
    """Check every blob (`jobs` at a time) and every link; see the module doc.
    Blobs are read and quarantined through `blobs`, their owner (a blob store over
    `driver` unless given)."""
    blobs = blobs or BlobStore(driver, NullHooks())
    report = ScrubReport()
    held: set[str] = set()
    work: asyncio.Queue[tuple[Digest, int] | None] = asyncio.Queue(maxsize=jobs * 4)

    async def check() -> None:
        while (item := await work.get()) is not None:
            digest, size = item
            try:
                actual = await _actual(blobs, digest)
            except PathNotFound:
                continue  # deleted meanwhile (a node cache's eviction): not corruption
            except Exception as exc:  # a store error on one blob must not end the scrub
                report.unreadable.append({"digest": str(digest), "error": str(exc)[:200]})
                continue
            if actual != str(digest):
                report.corrupt.append({"digest": str(digest), "actual": actual})
                if repair:
                    await blobs.remove(digest, to=paths.quarantined(digest))
                    report.quarantined.append(str(digest))
                    held.discard(str(digest))
            report.blobs += 1
            report.bytes += size
            if progress is not None:
                progress(report.blobs, report.bytes)

    workers = [asyncio.create_task(check()) for _ in range(max(1, jobs))]
    try:
        async for info in blobs.stored():
            held.add(str(info.digest))
            await work.put((info.digest, info.size))
    finally:
        for _ in workers:
            await work.put(None)
        await asyncio.gather(*workers)
    await _links(driver, held, report)
    await _record(driver, report)
    return report


async def _record(driver: Driver, report: ScrubReport) -> None:
    # For the server's /metrics (a scrub runs as its own process).
    figures = {"finished": time.time(), "blobs": report.blobs, "bytes": report.bytes,
               "corrupt": len(report.corrupt), "quarantined": len(report.quarantined),
               "unreadable": len(report.unreadable), "missing": len(report.missing)}
    try:
        await driver.put_content(paths.SCRUB_LAST, json.dumps(figures).encode())
    except StorageError as exc:
        log.warning("could not record the scrub's figures: %s", exc)


async def last_scrub(driver: Driver) -> dict[str, Any] | None:
    """The figures of the last scrub of this store, or None if none ran."""
    try:
        doc = json.loads(await driver.get_content(paths.SCRUB_LAST, 4096))
    except (PathNotFound, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


async def _links(driver: Driver, held: set[str], report: ScrubReport) -> None:
    async for info in driver.walk(paths.REPOSITORIES):
        if (link := paths.link_of(info.path)) is None:
            continue
        repo, kind, digest = link.repo, link.kind, Digest(*link.digest)
        if str(digest) not in held:
            report.missing.append({"repository": repo, "digest": str(digest), "kind": kind})
