"""Every pushed manifest scanned off the request path.

`ScanFeed` is a `core.hooks.Hooks` that forwards every event to the hooks it wraps
and, after a manifest is stored, queues it. One task scans the queue, one manifest
at a time, through core's services (`scanner.scan`) and stores each result. The
queue is bounded: a push that finds it full is not queued, and the catch-up finds
it (every manifest of every repository without a result), which also runs at start:
what a crash or a restart left unscanned is scanned then, since a result's absence
is the to-do. It runs again every `interval` seconds, for what was written to the
store without this process's hooks (`registry spack import`, another replica).

After storing the result of an image, it publishes the SBOM and the report as its
referrers (registry/scan/publish.py) through `writer`, the request path's services.
Those, and anyone's SPDX artifacts, are neither scanned nor given referrers.

Every result it writes (a scan, a re-match when read) and removes is told to the index
at once through `sink` (the index's queued hooks, registry/scan/summary.py), for search
and the dashboard. A result goes when the last repository holding its manifest deletes
it: a deletion queues a check, which asks `holders` (the repositories the index says
hold the digest) and the store whether any still does; the catch-up removes the results
of manifests no repository holds, for what a crash or another process's deletion left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from registry.core.decorators import HooksDecorator
from registry.core.errors import ManifestUnknown, NotFound
from registry.core.grammar import Digest
from registry.core.hooks import Hooks
from registry.core.manifest_format import Manifest, parse_manifest
from registry.core.service import Registry
from registry.index.db import Index
from registry.index.records import ScanEvent
from registry.scan import summary
from registry.scan.inventory import Result, ScanError
from registry.scan.limits import Limits
from registry.scan.publish import is_ours, publish, wants_referrers
from registry.scan.results import ScanResults
from registry.scan.scanner import scan
from registry.scan.vulns import Found, Vulnerabilities, found_in

log = logging.getLogger("registry.scan")

# Where a scan result's summary goes (IndexHooks.scan_event).
Sink = Callable[[ScanEvent], None]
# The repositories the index says hold a manifest digest; None when it cannot say now
# (it is catching up with the store).
Holders = Callable[[str], Awaitable[list[str] | None]]


class ScanFeed(HooksDecorator):
    """Hooks that pass every event on to `inner` and scan each manifest put (see the
    module docstring). `attach` gives it the registry to read, `run` is its task."""

    def __init__(self, inner: Hooks, results: ScanResults, limits: Limits | None = None,
                 scratch: str | None = None, max_queued: int = 10_000,
                 interval: float = 3600.0, vulns: Vulnerabilities | None = None,
                 sink: Sink | None = None, holders: Holders | None = None) -> None:
        super().__init__(inner)
        self.results = results
        self.sink = sink
        self.holders = holders
        self.vulns = vulns  # None: results list no vulnerabilities
        self.limits = limits or Limits()
        self.scratch = scratch
        self.max_queued = max_queued
        self.interval = interval
        self.dropped = 0
        self.scanned = 0
        self._registry: Registry | None = None
        self._writer: Registry | None = None  # None: no referrers are published
        self._again: set[tuple[str, Digest]] = set()  # scan even with a result
        self._pending: dict[tuple[str, Digest], None] = {}  # ordered, deduplicated
        self._deleted: dict[tuple[str, Digest], None] = {}  # results to check: still held?
        self._wake = asyncio.Event()
        self._missed = True  # the catch-up runs first
        self.running = asyncio.Event()  # cleared: scanning paused (`pause`)
        self.running.set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, registry: Registry, writer: Registry | None = None) -> None:
        """Read manifests through `registry`; publish referrers through `writer`."""
        self._registry = registry
        self._writer = writer

    # -- core.hooks.Hooks -------------------------------------------------------

    async def manifest_put(self, repo: str, digest: Digest, manifest: Manifest,
                           size: int, tag: str | None, config: bytes | None,
                           artifact: str | None = None) -> None:
        await self.inner.manifest_put(repo, digest, manifest, size, tag, config, artifact)
        if not is_ours(manifest):  # our referrers, written after a scan: no loop
            self.queue(repo, digest)

    async def manifest_deleted(self, repo: str, digest: Digest) -> None:
        await self.inner.manifest_deleted(repo, digest)
        if len(self._deleted) >= self.max_queued:
            self._missed = True  # the catch-up removes it
            return
        self._deleted[(repo, digest)] = None
        self._wake.set()

    # -- the queue ----------------------------------------------------------------

    def queue(self, repo: str, digest: Digest) -> None:
        """Scan `digest` of `repo` soon (on the event loop; never waits)."""
        if len(self._pending) >= self.max_queued:
            self.dropped += 1
            self._missed = True
            return
        self._pending[(repo, digest)] = None
        self._wake.set()

    def rescan(self, repo: str, digest: Digest) -> None:
        """Scan `digest` of `repo` again, replacing its result and referrers (from any
        thread)."""
        def again() -> None:
            self._again.add((repo, digest))
            self.queue(repo, digest)
        if self._loop is None:
            again()
        else:
            self._loop.call_soon_threadsafe(again)

    @property
    def queued(self) -> int:
        return len(self._pending) + len(self._deleted)

    def pause(self, paused: bool = True) -> None:
        """Stop scanning after the current manifest (or go on); from any thread (tests
        hold it to see a manifest pending)."""
        change = self.running.clear if paused else self.running.set
        if self._loop is None:
            change()
        else:
            self._loop.call_soon_threadsafe(change)

    async def run(self) -> None:
        """Scan what is queued, and catch up after a start or a full queue."""
        self._loop = asyncio.get_running_loop()
        while True:
            await self.running.wait()
            if self._missed:
                self._missed = False
                await self.catch_up()
            while self._pending or self._deleted:
                await self.running.wait()
                if self._deleted:  # first: a result to go before a push to scan again
                    repo, digest = next(iter(self._deleted))
                    await self.forget_if_gone(repo, digest)
                    self._deleted.pop((repo, digest), None)
                    continue
                repo, digest = next(iter(self._pending))
                await self.scan_one(repo, digest)
                self._pending.pop((repo, digest), None)
            if not self._missed:
                self._wake.clear()
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops
                    # a cancel that lands as the wake-up comes, and this loop would
                    # then outlive the server's shutdown.
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
                except TimeoutError:
                    self._missed = True

    async def catch_up(self) -> None:
        """Scan every stored manifest that has no result (one at a time), then remove
        the results of manifests no repository holds."""
        registry = self._registry
        if registry is None:
            return
        started = time.time()
        stored: set[Digest] = set()
        try:
            for repo in await registry.catalog.repositories():
                for digest in await registry.catalog.revisions(repo):
                    stored.add(digest)
                    await self.running.wait()
                    await self.scan_one(repo, digest)
            await self.sweep(stored, started)
        except Exception:
            log.exception("scan catch-up failed; it runs again at the next start")

    async def sweep(self, stored: set[Digest], started: float) -> int:
        """Remove the results of manifests not in `stored` (every manifest of every
        repository, listed since `started`) written before `started` (a newer one is of
        a push the listing did not see); how many."""
        gone = [digest async for digest, mtime in self.results.files()
                if digest not in stored and mtime < started]
        for digest in gone:
            await self.forget(digest)
        if gone:
            log.info("scan catch-up: removed %d results of deleted manifests", len(gone))
        return len(gone)

    async def forget_if_gone(self, repo: str, digest: Digest) -> None:
        """Remove the result of `digest`, deleted from `repo`, if no repository holds it
        now; left to the catch-up when the index cannot say which might."""
        registry = self._registry
        if registry is None or self.holders is None:
            return
        try:
            holders = await self.holders(str(digest))
            if holders is None:
                return
            for candidate in dict.fromkeys([repo, *holders]):
                if await registry.manifests.exists(candidate, digest):
                    return
            await self.forget(digest)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store down: the catch-up removes it
            log.warning("scan result of deleted %s@%s not removed: %s", repo, digest, exc)

    async def forget(self, digest: Digest) -> None:
        """Remove the result of `digest` and its summary in the index."""
        await self.results.delete(digest)
        if self.sink is not None:
            self.sink(summary.forgotten(digest))

    def _written(self, digest: Digest, doc: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink(summary.seen(digest, doc))

    async def sync_index(self, index: Index) -> int:
        """The index catch-up's pass over the results (summary.sync, core.indexing
        RoomPass); how many summaries changed."""
        return await summary.sync(self.results, index)

    async def scan_one(self, repo: str, digest: Digest) -> None:
        """Scan and store `digest` of `repo` unless it has a result already."""
        registry = self._registry
        if registry is None:
            return
        if (repo, digest) in self._again:
            self._again.discard((repo, digest))
        elif await self.results.has(digest):
            return
        try:
            stored = await registry.manifests.get(repo, str(digest))
            manifest: Manifest | None = parse_manifest(stored.data or b"", stored.media_type)
        except (ManifestUnknown, NotFound):
            return  # deleted meanwhile
        except Exception:
            manifest = None  # the scan says why
        if manifest is not None and is_ours(manifest):
            return
        try:
            result = await scan(registry, repo, digest, self.limits, self.scratch)
        except (ManifestUnknown, NotFound):
            return  # deleted meanwhile
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # stored, so that a broken manifest is not retried forever
            log.exception("scan of %s@%s failed", repo, digest)
            result = Result(errors=[ScanError(f"scan failed: {type(exc).__name__}: {exc}"[:300])])
        try:
            doc = await self.matched(self.results.document(digest, repo, result))
            await self.results.write(digest, doc)
            self._written(digest, doc)
            self.scanned += 1
        except Exception as exc:  # a full disk, a store down: the next catch-up retries
            log.warning("scan result of %s@%s not stored: %s", repo, digest, exc)
            return
        if self._writer is not None and manifest is not None and wants_referrers(manifest):
            try:
                await publish(self._writer, repo, digest, doc)
            except (ManifestUnknown, NotFound):
                pass  # deleted meanwhile
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a quota, a full disk: the result stands without
                log.warning("scan referrers of %s@%s not written: %s", repo, digest, exc)

    async def matched(self, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc` with its vulnerabilities; as it is when advisories cannot be read (a
        broken advisory database must not stop the scanning)."""
        if self.vulns is None:
            return doc
        try:
            return await self.vulns.annotate(doc)
        except Exception:
            log.exception("advisories not matched against %s", doc.get("digest"))
            return doc

    async def result(self, digest: Digest) -> dict[str, Any] | None:
        """The stored result of `digest`, re-matched (and stored so) when the advisory
        database changed since it was matched; None before the scan."""
        doc = await self.results.get(digest)
        if doc is None or self.vulns is None:
            return doc
        try:
            generation = await asyncio.to_thread(self.vulns.generation)
        except Exception:
            log.exception("advisory database unreadable")
            return doc
        if self.vulns.stale(doc, generation):
            doc = await self.matched(doc)
            await self.results.write(digest, doc)
            self._written(digest, doc)
        return doc

    async def findings(self, digest: Digest) -> list[Found] | None:
        """The vulnerabilities of `digest` as matched now (what a blocking policy
        judges, trust.seams.ScanLookup); None before the scan."""
        doc = await self.result(digest)
        return None if doc is None else found_in(doc)
