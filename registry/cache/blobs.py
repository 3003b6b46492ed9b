"""The node cache's blob service: local blobs as usual, missing ones fetched once.

`CachingBlobs` wraps the `Blobs` service (as distribution's `proxyblobstore` does)
and adds what that one lacks, coalescing: a table of in-flight fetches keyed by
digest, so N concurrent requests for a blob this node does not have cause exactly
one upstream GET per process. The fetch streams into a scratch file while every
request, the first included, is served from that file as it grows (`LocalFile`
with a `GrowingFile` progress: sendfile follows it). Ranges are served from the
same file.

Nothing unverified is ever sent whole: the last block of the download is held
back until the digest of the whole stream has been checked, so a follower cannot
reach the end of a blob that turns out to be corrupt; on a mismatch, a short
stream or an upstream failure the `GrowingFile` fails, every follower's
connection is closed, the scratch file is deleted and the in-flight entry goes,
so the next request tries again. Only a verified file is moved into the blob
store and linked into the repositories that asked for it. The fetch runs as its
own task: a client that goes away does not cancel it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp

from registry.cache import shared
from registry.cache.eviction import Lru
from registry.cache.peers import Peers
from registry.cache.shared import SharedPaths
from registry.cache.stats import CacheStats
from registry.cache.upstream import Upstream
from registry.core.access import NOBODY
from registry.core.decorators import BlobsDecorator
from registry.core.errors import (
    BadUpstream,
    BlobUnknown,
    Denied,
    NameUnknown,
    RangeUnsatisfiable,
    RegistryError,
    StorageError,
    Unsupported,
    UpstreamUnavailable,
)
from registry.core.grammar import Digest
from registry.core.growing import GrowingFile
from registry.core.hooks import Hooks, NullHooks
from registry.core.mounts import Mounts
from registry.core.protocols import Blobs
from registry.core.ranges import ByteRange, Unsatisfiable, parse_range
from registry.core.scratch import ScratchSpace
from registry.core.serving import BlobPlan, LocalFile

log = logging.getLogger("registry.cache")
T = TypeVar("T")

# Bytes hashed and written per thread hop; also what is held back until verified.
BLOCK = 1 << 20
# Threads for the fetches' file work. Their own pool: followers may wait for a
# growing file on the default pool (the TLS path), and must never starve the writer.
FETCH_THREADS = 8
# A worker following another worker's fetch looks at the file this often, and
# waits this long for the upstream to answer that worker.
FOLLOW_POLL_S = 0.005
FOLLOW_START_S = 60.0


def _range(header: str | None, size: int) -> ByteRange | None:
    try:
        return parse_range(header, size)
    except Unsatisfiable:
        raise RangeUnsatisfiable(size) from None


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _open_pair(path: str) -> tuple[int, int]:
    """A new file for writing, and a read descriptor on it that followers dup."""
    wfd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        return wfd, os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(wfd)
        raise


@dataclass(eq=False)
class Fetch:
    """One upstream download of a blob, shared by every request for it."""

    digest: Digest
    repos: set[str]
    ready: asyncio.Future[None]  # done once the size is known and the file exists
    size: int = 0
    read_fd: int = -1  # followers get a dup of it; closed when the fetch ends
    progress: GrowingFile = field(default_factory=GrowingFile)
    error: BaseException | None = None


class CachingBlobs(BlobsDecorator):
    """`Blobs` of a node cache: served locally when stored, else fetched from the
    upstream once per digest and followed while it downloads. Pushes and deletes
    are refused (the upstream is the truth)."""

    def __init__(self, inner: Blobs, scratch: ScratchSpace, upstream: Upstream, lru: Lru,
                 fsync: bool = True, hooks: Hooks | None = None,
                 peers: Peers | None = None, stats: CacheStats | None = None,
                 mounts: Mounts | None = None) -> None:
        super().__init__(inner)
        # Links into repositories (core/mounts.py): what the upstream serves there.
        self.mounts = mounts or Mounts(inner)
        self.peers = peers
        self.stats = stats or CacheStats()
        self.hooks = hooks or NullHooks()
        self.scratch = scratch  # where downloads grow, on local disk (core.scratch)
        self.upstream = upstream
        self.lru = lru
        self.fsync = fsync
        self._fetches: dict[Digest, Fetch] = {}
        self._tasks: set[asyncio.Task] = set()
        self._pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="cache-fetch")

    async def _io(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def in_flight(self) -> int:
        return len(self._fetches)

    async def close(self) -> None:
        """Stop fetches still running (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=False)

    # -- reads ---------------------------------------------------------------

    async def serve(self, repo: str, digest: Digest, range_header: str | None = None,
                    with_body: bool = True) -> BlobPlan:
        """Local if stored (linking it into `repo` if another repository brought it),
        else a follower of the one fetch of `digest`; a HEAD of a blob not stored
        asks the upstream for its size and fetches nothing."""
        for _ in range(3):  # a fetch may finish or fail between the steps below
            plan = await self._local(repo, digest, range_header, with_body)
            if plan is not None:
                if with_body:
                    self.stats.hits += 1
                    self.stats.bytes_served += _length(plan)
                return plan
            fetch = self._fetches.get(digest)
            if fetch is None:
                if not with_body:
                    size = await self.upstream.blob_size(repo, digest)
                    return BlobPlan(digest, size, _range(range_header, size))
                fetch = self._start(repo, digest)
            else:
                if repo not in fetch.repos:
                    # The fetch is for another repository: join it only if the
                    # upstream serves the blob here too.
                    if not await self._upstream_holds(repo, digest):
                        raise BlobUnknown(detail={"digest": str(digest)})
                    fetch.repos.add(repo)
                self.stats.coalesced += 1
            # Shielded: a client that goes away must not cancel what others wait for.
            await asyncio.shield(fetch.ready)
            if fetch.error is not None:
                raise _as_domain(fetch.error, digest)
            rng = _range(range_header, fetch.size)
            if not with_body:
                return BlobPlan(digest, fetch.size, rng)
            if fetch.read_fd < 0:
                continue  # ended between the wake-up and now: stored, or to retry
            # No await between the check and the dup: the fetch cannot close it meanwhile.
            # (dup does not block; each follower needs a descriptor it can close.)
            fd = os.dup(fetch.read_fd)
            self.lru.pin(digest)
            self.hooks.blob_pulled(repo, digest)  # a pull like any other (local ones: inner)
            plan = BlobPlan(digest, fetch.size, rng,
                            LocalFile(fd, fetch.progress, lambda: self.lru.unpin(digest)))
            self.stats.bytes_served += _length(plan)
            return plan
        raise UpstreamUnavailable("blob fetch did not settle, retry", {"digest": str(digest)})

    async def _local(self, repo: str, digest: Digest, range_header: str | None,
                     with_body: bool) -> BlobPlan | None:
        if not await self.inner.linked(repo, digest):
            if await self.inner.size(digest) is None:
                return None
            # Already here, pulled through another repository: linked into this one
            # only when the upstream serves it here too (a cache mirrors its
            # upstream; knowing a digest is no right to its bytes).
            if await self.mounts.link(repo, digest, NOBODY,
                                      vouch=self._upstream_holds) is None:
                raise BlobUnknown(detail={"digest": str(digest)})
        self.lru.pin(digest)
        try:
            plan = await self.inner.serve(repo, digest, range_header, with_body)
        except BlobUnknown:
            self.lru.unpin(digest)
            return None  # linked, but evicted: fetch it again
        except BaseException:
            self.lru.unpin(digest)
            raise
        self.lru.touch(digest, plan.size)
        if isinstance(plan.body, LocalFile):
            plan.body.on_done = lambda: self.lru.unpin(digest)
        else:
            self.lru.unpin(digest)
        return plan

    async def _upstream_holds(self, repo: str, digest: Digest) -> bool:
        """Whether the upstream serves `digest` in `repo` (a HEAD there)."""
        try:
            await self.upstream.blob_size(repo, digest)
        except (BlobUnknown, NameUnknown, Denied):
            return False
        return True

    # -- prefetch --------------------------------------------------------------

    def prefetch(self, repo: str, blobs: list[tuple[Digest, int]]) -> None:
        """Start fetching `blobs` of `repo` that are neither here nor on their way,
        in the background (the same coalesced fetches requests would start)."""
        task = asyncio.get_running_loop().create_task(self._prefetch(repo, blobs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prefetch(self, repo: str, blobs: list[tuple[Digest, int]]) -> None:
        for digest, size in blobs:
            if self.lru.max_bytes and size > self.lru.max_bytes // 4:
                continue  # a big share of a small cache: fetch it when it is asked for
            try:
                if digest in self._fetches or await self.inner.size(digest) is not None:
                    continue
            except StorageError:
                continue
            if digest not in self._fetches:
                self.stats.prefetched += 1
                self._start(repo, digest)

    # -- the fetch -----------------------------------------------------------

    def _start(self, repo: str, digest: Digest) -> Fetch:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fetch = Fetch(digest, {repo}, ready)
        self._fetches[digest] = fetch
        task = asyncio.create_task(self._claim(fetch, repo), name=f"fetch {digest}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fetch

    def _shared_paths(self, digest: Digest) -> SharedPaths:
        return SharedPaths.of(self.scratch.directory(), digest)

    async def _claim(self, fetch: Fetch, repo: str) -> None:
        """Fetch from the upstream if no other worker of this cache is fetching the
        blob (shared.py), else follow the file that worker writes."""
        try:
            shared_paths = self._shared_paths(fetch.digest)
            lock = await self._io(shared.try_lock, shared_paths.lock)
        except BaseException as exc:
            self._fetches.pop(fetch.digest, None)
            fetch.error = exc
            fetch.ready.set_result(None)
            raise
        if lock is None:
            self.stats.coalesced += 1  # another worker of this cache is fetching it
            try:
                # That worker's fetch may be for another repository.
                held = await self._upstream_holds(repo, fetch.digest)
            except BaseException as exc:
                self._fetches.pop(fetch.digest, None)
                _fail(fetch, exc, f"asking the upstream for {fetch.digest} in {repo}")
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            if not held:
                self._fetches.pop(fetch.digest, None)
                _fail(fetch, BlobUnknown(detail={"digest": str(fetch.digest)}),
                      f"following the fetch of {fetch.digest} for {repo}")
                return
            await self._follow(fetch, shared_paths)
            return
        self.stats.misses += 1
        try:
            await self._run(fetch, repo, shared_paths)
        finally:
            await self._io(shared.unlock, lock, shared_paths.lock)

    async def _run(self, fetch: Fetch, repo: str, shared_paths: SharedPaths) -> None:
        digest = fetch.digest
        local = shared_paths.data
        staged = self.scratch.staged(local)
        resp: aiohttp.ClientResponse | None = None
        wfd = -1
        created = False
        try:
            resp, size, source = await self._open(repo, digest)
            fetch.size = size
            fetch.progress = GrowingFile(size)
            await self.lru.make_room(size)
            # What a fetcher that died left (we hold the lock: nobody else writes it).
            await self._io(shared.remove, local, shared_paths.size)
            wfd, fetch.read_fd = await self._io(_open_pair, local)
            created = True
            await self._io(shared.publish_size, shared_paths, size)
            fetch.ready.set_result(None)
            log.info("fetching %s (%d bytes) from %s", digest, size, source)
            started = time.monotonic()
            await self._download(fetch, resp, wfd)
            if self.fsync:
                await self._io(os.fsync, wfd)
            await self._io(os.close, wfd)
            wfd = -1
            fetch.progress.complete()
            # Every follower has what it needs in the file; now make it a stored blob.
            if await self.inner.commit(digest, staged):
                created = False  # else the store had it already: the copy goes
            self.lru.touch(digest, size)
            for name in sorted(fetch.repos):  # the upstream serves it in each
                await self.mounts.arrived(name, digest, size)
            took = time.monotonic() - started
            log.info("fetched %s in %.1f s (%.0f MiB/s)", digest, took,
                     size / (1 << 20) / max(took, 1e-3))
            await self.lru.make_room()
        except BaseException as exc:
            self.stats.fetch_errors += 1
            _fail(fetch, exc, f"fetch of {digest} from {self.upstream.base}")
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if self._fetches.get(digest) is fetch:
                del self._fetches[digest]
            if resp is not None:
                resp.release()
            # Taken before the await: a request waking up meanwhile must not dup a
            # descriptor being closed (its number could already be another file's).
            rfd, fetch.read_fd = fetch.read_fd, -1
            await self._io(_cleanup, wfd, rfd, local if created else None)
            await self._io(shared.remove, shared_paths.size)

    async def _follow(self, fetch: Fetch, shared_paths: SharedPaths) -> None:
        """Serve this process's requests from the file another worker is fetching
        into. When that worker is gone before the file is whole, fail them: the
        next request claims the fetch."""
        digest = fetch.digest
        rfd = -1
        try:
            opened = await self._wait_for_file(shared_paths)
            if opened is None:  # the fetcher finished or gave up: look again
                self._fetches.pop(digest, None)
                fetch.ready.set_result(None)
                return
            rfd, size = opened
            fetch.size, fetch.progress, fetch.read_fd = size, GrowingFile(size), rfd
            fetch.ready.set_result(None)
            polls = 0
            while True:
                st = await self._io(os.fstat, rfd)
                have = st.st_size
                fetch.progress.advance(min(have, size))
                if have >= size:  # whole only once verified (see shared.py)
                    break
                if st.st_nlink == 0:  # a dead fetcher's file, removed by the next one
                    raise UpstreamUnavailable("the fetch of the blob started over, retry",
                                              {"digest": str(digest)})
                polls += 1
                if polls % 20 == 0 and await self._io(shared.holder_gone, shared_paths):
                    if (await self._io(os.fstat, rfd)).st_size >= size:
                        continue
                    raise UpstreamUnavailable("the worker fetching the blob stopped, retry",
                                              {"digest": str(digest)})
                await asyncio.sleep(FOLLOW_POLL_S)
            fetch.progress.advance(size)
            fetch.progress.complete()
            # The fetcher moves the file into the store right after; link ours then.
            for _ in range(200):
                if await self.inner.size(digest) is not None:
                    for name in sorted(fetch.repos):  # the upstream serves it in each
                        await self.mounts.arrived(name, digest, size)
                    self.lru.touch(digest, size)
                    break
                await asyncio.sleep(0.05)
        except BaseException as exc:
            _fail(fetch, exc, f"following the fetch of {digest}")
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if self._fetches.get(digest) is fetch:
                del self._fetches[digest]
            rfd, fetch.read_fd = fetch.read_fd, -1
            if rfd >= 0:
                await self._io(_cleanup, -1, rfd, None)

    async def _wait_for_file(self, shared_paths: SharedPaths) -> tuple[int, int] | None:
        """(read descriptor, size) of the file the fetching worker writes, once the
        upstream has answered it; None when that worker is no longer fetching."""
        deadline = asyncio.get_running_loop().time() + FOLLOW_START_S
        while True:
            opened = await self._io(_open_current, shared_paths)
            if opened is not None:
                return opened
            if await self._io(shared.holder_gone, shared_paths):
                return None
            if asyncio.get_running_loop().time() > deadline:
                raise UpstreamUnavailable("the worker fetching the blob got no answer from "
                                          "the upstream in time, retry")
            await asyncio.sleep(FOLLOW_POLL_S)

    async def _open(self, repo: str,
                    digest: Digest) -> tuple[aiohttp.ClientResponse, int, str]:
        """The blob's GET, its size and where from: the sibling cache that fetches
        it (peers.py), or the upstream when this cache is the one or no sibling
        answers."""
        if self.peers is not None:
            for peer in self.peers.sources(digest):
                try:
                    return (*await peer.open_blob(repo, digest), peer.base)
                except UpstreamUnavailable as exc:
                    self.peers.failed(peer, _describe(exc))
        return (*await self.upstream.open_blob(repo, digest), self.upstream.base)

    async def _download(self, fetch: Fetch, resp: aiohttp.ClientResponse, wfd: int) -> None:
        """Stream the body into the file while hashing it. The newest block is held
        back (never in the file) until the whole stream has matched its digest."""
        hasher = fetch.digest.hasher()
        pending: list[bytes] = []
        pending_len = 0
        held: bytes | None = None
        written = 0

        def step(new: bytes, old: bytes | None, offset: int) -> None:
            hasher.update(new)
            if old is not None:
                _write_all(wfd, old, offset)

        try:
            async for chunk in resp.content.iter_any():
                self.stats.bytes_upstream += len(chunk)
                pending.append(chunk)
                pending_len += len(chunk)
                if pending_len < BLOCK:
                    continue
                block = b"".join(pending)
                pending, pending_len = [], 0
                await self._io(step, block, held, written)
                if held is not None:
                    written += len(held)
                    fetch.progress.advance(written)
                held = block
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UpstreamUnavailable(f"upstream registry {self.upstream.base} broke off "
                                      "the blob", {"digest": str(fetch.digest),
                                                   "error": _describe(exc)}) from None
        tail = b"".join(pending)
        await self._io(step, tail, None, 0)
        total = written + (len(held) if held is not None else 0) + len(tail)
        actual = Digest(fetch.digest.algorithm, hasher.hexdigest())
        if total != fetch.size or actual != fetch.digest:
            raise BadUpstream("upstream blob does not match its digest",
                              {"digest": str(fetch.digest), "actual": str(actual),
                               "size": fetch.size, "received": total})
        last = (held or b"") + tail
        await self._io(_write_all, wfd, last, written)
        fetch.progress.advance(fetch.size)

    # -- writes: the upstream is the truth -----------------------------------

    async def unlink(self, repo: str, digest: Digest) -> None:
        raise Unsupported(f"this is a read-only cache of {self.upstream.base}: delete there",
                          {"upstream": self.upstream.base})


def _fail(fetch: Fetch, exc: BaseException, what: str) -> None:
    """Fail every request waiting on `fetch` (unless all already have their bytes:
    then only storing the blob failed) and say why in the log."""
    if not fetch.progress.done:
        fetch.error = exc
        if fetch.ready.done():
            fetch.progress.fail(exc)  # every follower's connection is closed
        else:
            fetch.ready.set_result(None)  # waiters raise fetch.error
    if isinstance(exc, RegistryError | aiohttp.ClientError | TimeoutError | OSError):
        log.warning("%s failed: %s", what, _describe(exc))
    elif not isinstance(exc, asyncio.CancelledError):
        log.error("%s failed", what, exc_info=exc)


def _length(plan: BlobPlan) -> int:
    return plan.range.length if plan.range is not None else plan.size


def _open_current(shared_paths: SharedPaths) -> tuple[int, int] | None:
    """A descriptor on the fetch's data file and the blob's size, when both are
    published and the file is the live one (not a dead fetcher's, unlinked)."""
    size = shared.read_size(shared_paths)
    if size is None:
        return None
    try:
        fd = os.open(shared_paths.data, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    if os.fstat(fd).st_nlink == 0:
        os.close(fd)
        return None
    return fd, size


def _cleanup(wfd: int, rfd: int, path: str | None) -> None:
    for fd in (wfd, rfd):
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RegistryError):
        return f"{exc.message} {exc.detail}"
    return str(exc) or type(exc).__name__


def _as_domain(exc: BaseException, digest: Digest) -> RegistryError:
    """What a request waiting for a failed fetch answers."""
    if isinstance(exc, RegistryError):
        return exc
    return UpstreamUnavailable("blob fetch failed, retry", {"digest": str(digest)})
