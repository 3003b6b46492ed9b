"""IndexHooks: core's write and read events, recorded without a request ever
waiting on SQLite.

Write events (manifest_put, blob_linked, ...) are appended to a bounded queue
and the hook returns; one writer task applies the queue in order, in batches of
one transaction each, on the index thread. If the queue is full the event is
dropped and the index marked dirty, so the catch-up pass repairs it: a request
is never blocked or failed by the index.

Read events (manifest_pulled, blob_pulled) are plain function calls that add to
an in-memory counter; the writer task turns the counters into one `PullsSeen`
event every `pull_flush_seconds` and at close. No await and no task per GET.

`await flush()` returns once everything queued before it (and the pull counts
so far) is applied: tests, reindex and shutdown use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from typing import Any

from registry.index.db import Index
from registry.index.records import (
    BlobLinked,
    BlobUnlinked,
    Event,
    ManifestDeleted,
    ManifestLike,
    ManifestPut,
    PullCount,
    PullsSeen,
    ScanEvent,
    SignaturesSeen,
    SpecEvent,
    TagDeleted,
    WriteEvent,
)

log = logging.getLogger("registry.index")

# Test only: seconds the writer waits before applying each batch, so that a test
# can kill the server with events still queued (tests/server/test_index.py).
# Outside any config section, so `registry config check` never sees it.
APPLY_DELAY_ENV = "REGISTRY_TEST_INDEX_APPLY_DELAY"


class IndexHooks:
    """The core.hooks.Hooks implementation that keeps an Index current off the
    request path (see the module docstring)."""

    def __init__(self, index: Index, *, max_queued: int = 10_000, batch: int = 500,
                 pull_flush_seconds: float = 5.0, max_pull_keys: int = 100_000) -> None:
        self.index = index
        self.max_queued = max_queued
        self.batch = batch
        self.pull_flush_seconds = pull_flush_seconds
        self.max_pull_keys = max_pull_keys
        self.dropped = 0  # write events lost to a full queue or a failed apply
        self.pulls_dropped = 0  # read events not counted (too many distinct keys)
        self._queue: deque[Event] = deque()
        self._enqueued = 0  # events put in the queue, ever
        self._done = 0  # of those, applied (or given up on), in order
        self._pulls: dict[tuple[str, Any, str], list[Any]] = {}  # key -> [count, last]
        self._writes: dict[str, int] = {}  # repo -> write events queued, ever
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._overflowing = False
        self._apply_delay = float(os.environ.get(APPLY_DELAY_ENV, "0") or 0)

    # -- core.hooks.Hooks: writes ----------------------------------------------

    async def manifest_put(self, repo: str, digest: Any, manifest: ManifestLike, size: int,
                           tag: str | None, config: bytes | None,
                           artifact: str | None = None) -> None:
        # The manifest is converted to rows on the index thread, not here.
        self._put(ManifestPut(repo, str(digest), manifest, size, tag, config, time.time(),
                              artifact))

    async def manifest_deleted(self, repo: str, digest: Any) -> None:
        self._put(ManifestDeleted(repo, str(digest)))

    async def tag_deleted(self, repo: str, tag: str) -> None:
        self._put(TagDeleted(repo, tag))

    async def blob_linked(self, repo: str, digest: Any, size: int) -> None:
        self._put(BlobLinked(repo, str(digest), size))

    async def blob_unlinked(self, repo: str, digest: Any) -> None:
        self._put(BlobUnlinked(repo, str(digest)))

    # -- Spack build caches (registry.spack.catalog) -----------------------------

    def spec_event(self, event: SpecEvent) -> None:
        """Queue a change to the specs of a cache, like any write event. A dropped
        one marks the index dirty; the catalog's refresh resets the cache's rows."""
        self._put(event)

    # -- signatures (registry.trust.feed) -----------------------------------------

    def signature_event(self, event: SignaturesSeen) -> None:
        """Queue the signatures a manifest was found to have, like any write event;
        a dropped one marks the index dirty."""
        self._put(event)

    # -- scan summaries (registry.scan.worker) -------------------------------------

    def scan_event(self, event: ScanEvent) -> None:
        """Queue a scan result's summary written or removed, like any write event; a
        dropped one marks the index dirty (the catch-up re-reads the results)."""
        self._put(event)

    # -- core.hooks.Hooks: reads (called, not awaited, on every GET) -------------

    def manifest_pulled(self, repo: str, digest: Any) -> None:
        self._pulled((repo, digest, "manifest"))

    def blob_pulled(self, repo: str, digest: Any) -> None:
        self._pulled((repo, digest, "blob"))

    def _pulled(self, key: tuple[str, Any, str]) -> None:
        # Keyed by the digest object (its text is made at flush): this runs on
        # every GET, so it is kept to a dict lookup and two stores.
        entry = self._pulls.get(key)
        if entry is None:
            self._count_new(key)
        else:
            entry[0] += 1
            entry[1] = time.time()

    def _count_new(self, key: tuple[str, Any, str]) -> None:
        if len(self._pulls) < self.max_pull_keys:
            self._pulls[key] = [1, time.time()]
        else:  # a bound on memory between flushes; pull counts are statistics
            self.pulls_dropped += 1

    # -- the queue -------------------------------------------------------------

    def _put(self, event: WriteEvent) -> None:
        if self._closed or len(self._queue) >= self.max_queued:
            if not self._overflowing:  # once per episode, not once per event
                self._overflowing = True
                log.warning("index: event queue full or closed; dropping events until "
                            "the catch-up pass repairs the index")
            self.dropped += 1
            self.index.mark_dirty()
            return
        self._queue.append(event)
        self._enqueued += 1
        self._writes[event.repo] = self._writes.get(event.repo, 0) + 1
        self.start()
        self._wake.set()

    def _queue_pulls(self) -> None:
        if not self._pulls:
            return
        counts, self._pulls = self._pulls, {}
        # Not bounded by max_queued: at most one per flush, and itself bounded.
        self._queue.append(PullsSeen(tuple(PullCount(repo, str(digest), kind, c, last)
                                           for (repo, digest, kind), (c, last)
                                           in counts.items())))
        self._enqueued += 1

    def writes(self, repo: str) -> int:
        """How many write events for `repo` were ever queued: a catch-up pass compares
        it before and after reading the store, to never apply a diff older than them."""
        return self._writes.get(repo, 0)

    @property
    def queued(self) -> int:
        """Events waiting to be applied."""
        return len(self._queue)

    def start(self) -> None:
        """Start the writer task (idempotent; must be called on the event loop)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._write_loop(),
                                                                name="index-writer")

    async def flush(self) -> None:
        """Wait until every event queued so far, and the pull counts so far, are
        applied to the index."""
        self._queue_pulls()
        target = self._enqueued
        if self._done >= target:
            return
        self.start()
        self._wake.set()
        task = self._task
        async with self._progress:
            await self._progress.wait_for(
                lambda: self._done >= target or task is None or task.done())
        if self._done < target:
            raise RuntimeError("index writer stopped with events unapplied")

    async def close(self) -> None:
        """Drain the queue and the pull counts, then stop the writer. Events after
        this are dropped (and mark the index dirty)."""
        try:
            await self.flush()
        finally:
            self._closed = True
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    # -- the writer task ---------------------------------------------------------

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_pulls = loop.time() + self.pull_flush_seconds
        while True:
            if not self._queue:
                # asyncio.timeout, not wait_for: on Python 3.11 a cancel that lands
                # while wait_for is cancelling its inner wait after a timeout is
                # turned into TimeoutError and lost, and shutdown then hangs here.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_pulls - loop.time())):
                        await self._wake.wait()
            self._wake.clear()
            if loop.time() >= next_pulls:
                self._queue_pulls()
                next_pulls = loop.time() + self.pull_flush_seconds
            while self._queue:
                if self._apply_delay:
                    await asyncio.sleep(self._apply_delay)
                batch = [self._queue.popleft()
                         for _ in range(min(self.batch, len(self._queue)))]
                await self._apply(batch)
                self._done += len(batch)
                async with self._progress:
                    self._progress.notify_all()
            self._overflowing = False

    async def _apply(self, batch: list[Event]) -> None:
        try:
            await self.index.apply(batch)
            return
        except Exception:
            log.exception("index: applying a batch of %d events failed; retrying one by one",
                          len(batch))
        for event in batch:  # keep what can be kept; the catch-up pass repairs the rest
            try:
                await self.index.apply([event])
            except Exception as exc:
                log.warning("index: dropping %s: %s", type(event).__name__, exc)
                self.dropped += 1
                self.index.mark_dirty()
