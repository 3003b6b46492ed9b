"""Online garbage collection: free the blobs nothing references, while pushes go on.

One collector at a time across workers and replicas: a lease in the store
(`_gc/lease`, renewed while the collection runs, expiring if its holder dies).

1. **Lease**, then a pause of `PROPAGATION_S`: every process re-reads the lease
   each second (`GcWatch`), and from then on records each blob it finds to exist
   (a HEAD or GET, a size check by a manifest push or a mount, a new link) as
   `_gc/seen/<alg>/<hex>` before it answers.
2. **Retention** (`[gc] retention`, core/retention.py): the untagged manifests the
   rules let go are deleted, so that their blobs are freed by this collection.
   Without rules every manifest stays.
   **Mark**: every manifest of every repository (its revision links) and what it
   names (config, layers, child manifests); every blob an S3 object entry names;
   any digest written in the Spack area.
3. **Sweep**: a blob neither marked, nor younger than the grace period (its upload
   may be finishing), nor seen, is moved to `_gc/trash/` (`Blobs.remove`: the
   blob service owns `blobs/` and drops every worker's cached sizes with the
   file), checked for a seen mark once more (a manifest push may have just
   named it: it goes back, `Blobs.commit`), then deleted. A push that named it
   before it moved finds it; one that names it after its second check finds it
   gone and fails loudly (MANIFEST_BLOB_UNKNOWN), never a manifest pointing at
   nothing.
4. Repositories' links to the blobs deleted are removed (the index follows), found
   by a second walk: the collector holds the set of referenced digests, not every
   link in the store.
5. Upload sessions untouched for `uploads_after` seconds are deleted.

Before marking, whatever an interrupted collection left in the trash is put back
and judged again. `dry_run` marks and counts but moves nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from registry.core.errors import BlobUnknown
from registry.core.grammar import Digest
from registry.core.manifest_format import named_digests
from registry.core.retention import RetentionReport, RetentionRule
from registry.core.retention import apply as apply_retention
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound, StorageError

log = logging.getLogger("registry.gc")

LEASE = paths.GC_LEASE
SEEN = paths.GC_SEEN
TRASH = paths.GC_TRASH
RESERVE = paths.GC_RESERVE
RESERVE_BYTES = 2 << 20
LEASE_TTL_S = 60.0
PROPAGATION_S = 2.5  # > GcWatch's refresh period: every process knows before marking
MAX_MANIFEST = 4 << 20
_DIGEST = re.compile(rb"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
# Spack's documents also write checksums as bare hex: over-marking only keeps bytes.
_BARE = re.compile(rb"(?<![0-9a-f:])([0-9a-f]{64})(?![0-9a-f])")


class GcBusy(Exception):
    """Another collector holds the lease."""


@dataclass
class GcReport:
    """What a collection found and did."""

    dry_run: bool = False
    blobs: int = 0
    referenced: int = 0
    kept_recent: int = 0
    kept_seen: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    links_removed: int = 0
    manifests_deleted: int = 0  # untagged, by the retention rules
    manifests_kept_seen: int = 0  # retention would have, but a push named them
    uploads_purged: int = 0  # upload sessions abandoned for [storage] upload_purge_after
    seconds: float = 0.0


class GcWatch:
    """This process's view of whether a collection runs, and its seen marks."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.active = False
        self._lease_id = ""
        self._marked: set[str] = set()

    async def refresh(self) -> None:
        lease = await _read_lease(self.driver)
        active = lease is not None and lease["expires"] > time.time()
        if lease is not None and active and lease["id"] != self._lease_id:
            self._lease_id, self._marked = lease["id"], set()
        self.active = active

    async def run(self, period: float = 1.0) -> None:
        """Refresh every `period` seconds, for the life of the process (and put the
        collector's reserve in place first)."""
        await keep_reserve(self.driver)
        while True:
            try:
                await self.refresh()
            except Exception:  # cannot tell (store down, a lease garbled): mark anyway,
                self.active = True  # marking costs little, missing one a lot
            await asyncio.sleep(period)

    async def seen(self, digest: Digest) -> None:
        """Record that `digest` was found to exist, if a collection runs."""
        if not self.active or str(digest) in self._marked:
            return
        await self.driver.put_content(paths.gc_seen(digest), b"")
        self._marked.add(str(digest))


async def _read_lease(driver: Driver) -> dict[str, Any] | None:
    try:
        doc = json.loads(await driver.get_content(LEASE, 4096))
        return {"id": str(doc["id"]), "owner": str(doc.get("owner", "")),
                "expires": float(doc["expires"])}
    except PathNotFound:
        return None
    except (ValueError, KeyError, TypeError):
        # A lease garbled (a store that lost half a write): held as long as a lease
        # written then would be, then free.
        try:
            written = (await driver.stat(LEASE)).mtime
        except PathNotFound:
            return None
        return {"id": "garbled", "owner": "unknown", "expires": written + LEASE_TTL_S}


# Leases this process could not release (the store went away mid-collection): its
# next collection may take them over rather than wait for them to expire.
_unreleased: set[str] = set()


class _Lease:
    def __init__(self, driver: Driver, owner: str) -> None:
        self.driver, self.owner, self.id = driver, owner, uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None

    async def _write(self) -> None:
        doc = {"id": self.id, "owner": self.owner, "expires": time.time() + LEASE_TTL_S}
        await self.driver.put_content(LEASE, json.dumps(doc).encode())

    async def acquire(self) -> None:
        held = await _read_lease(self.driver)
        if held is not None and held["expires"] > time.time() \
                and held["id"] not in _unreleased:
            raise GcBusy(f"a collection by {held['owner']} is running")
        # An earlier run's marks mean nothing now; cleared before the lease shows, so
        # that no mark of this run (made once a process sees the lease) is lost.
        await _clear(self.driver, SEEN)
        try:
            await self._write()
        except StorageError:
            # A full disk is when a collection is needed most: the space kept in
            # reserve makes room for the lease (and the few writes that follow).
            if not await _release_reserve(self.driver):
                raise
            await self._write()
        await asyncio.sleep(0.2)  # two collectors writing at once: the last one wins
        held = await _read_lease(self.driver)
        if held is None or held["id"] != self.id:
            raise GcBusy("another collector took the lease")
        self._task = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL_S / 4)
            await self._write()

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            await self.driver.delete(LEASE)
        except PathNotFound:
            pass
        except StorageError:
            _unreleased.add(self.id)
            raise
        _unreleased.clear()


async def keep_reserve(driver: Driver) -> None:
    """Keep RESERVE_BYTES in the store for a collection on a full disk (best effort:
    with no room for it now, the next collection makes some)."""
    try:
        if (await driver.stat(RESERVE)).size == RESERVE_BYTES:
            return
    except PathNotFound:
        pass
    except StorageError:
        return
    try:
        await driver.put_content(RESERVE, bytes(RESERVE_BYTES))
    except StorageError as exc:
        log.warning("no room for the collector's reserve of %d bytes: %s", RESERVE_BYTES, exc)


async def _release_reserve(driver: Driver) -> bool:
    try:
        await driver.delete(RESERVE)
    except StorageError:
        return False
    log.warning("the store is full: the collector uses its reserve")
    return True


async def _clear(driver: Driver, prefix: str) -> None:
    async for info in driver.walk(prefix):
        try:
            await driver.delete(info.path)
        except PathNotFound:
            pass


async def _mark(driver: Driver, blobs: Any, let_go: set[tuple[str, str]]) -> set[str]:
    """Every digest referenced (`let_go`: manifests retention deletes, on a dry run
    still linked)."""
    marked: set[str] = set()
    manifests: set[Digest] = set()
    async for info in driver.walk(paths.REPOSITORIES):
        link = paths.link_of(info.path)
        if link is not None and link.kind == paths.MANIFEST:
            digest = Digest(*link.digest)
            if (link.repo, str(digest)) not in let_go:
                manifests.add(digest)
    for digest in manifests:
        marked.add(str(digest))
        try:
            raw = await blobs.read(digest, MAX_MANIFEST)
        except BlobUnknown:
            continue
        marked.update(named_digests(raw))
    # S3 objects naming blobs, and whatever the Spack area writes down.
    for area in (paths.OBJECTS, paths.SPACK):
        async for info in driver.walk(area):
            try:
                raw = await driver.get_content(info.path, MAX_MANIFEST)
            except PathNotFound:
                continue
            marked.update(m.decode() for m in _DIGEST.findall(raw))
            marked.update(f"sha256:{m.decode()}" for m in _BARE.findall(raw))
    return marked


async def _unlink(driver: Driver, blobs: Any, deleted: set[str]) -> int:
    """Remove the repositories' links to the blobs deleted: a second walk, so that
    no map of every link in the store is held through the collection."""
    removed = 0
    async for info in driver.walk(paths.REPOSITORIES):
        link = paths.link_of(info.path)
        if link is None or link.kind == paths.MANIFEST:
            continue
        digest = Digest(*link.digest)
        if str(digest) not in deleted:
            continue
        try:
            await blobs.unlink(link.repo, digest)
            removed += 1
        except BlobUnknown:
            pass
    return removed


async def collect(driver: Driver, reg: Any, grace: float = 3600.0, dry_run: bool = False,
                  owner: str = "",
                  propagation: float = PROPAGATION_S,
                  retention: list[RetentionRule] | None = None,
                  uploads_after: float = 0) -> GcReport:
    """One collection (see the module doc) over `reg`, the core services (their
    deletes keep the index right; blobs go through `reg.blobs`, which drops every
    worker's cached sizes with them); GcBusy when another collector runs.
    `uploads_after` > 0: upload sessions (OCI and S3 multipart) untouched that long
    are deleted too (as the server's hourly purge does)."""
    report = GcReport(dry_run=dry_run)
    started = time.monotonic()
    lease = _Lease(driver, owner or f"pid {os.getpid()}")
    await lease.acquire()
    try:
        await asyncio.sleep(propagation)
        await _recover_trash(driver, reg.blobs)
        begun = time.time()
        let_go: set[tuple[str, str]] = set()
        purge = uploads_after > 0 and not dry_run
        # One walk of the tree for the two passes that go repository by repository.
        repositories = await reg.catalog.repositories() if retention or purge else []
        if retention:
            kept = RetentionReport()
            let_go = await apply_retention(
                driver, reg.manifests, reg.tags, retention, repositories,
                grace, lambda d: _exists(driver, paths.gc_seen(d)), dry_run, kept)
            report.manifests_deleted = kept.manifests_deleted
            report.manifests_kept_seen = kept.manifests_kept_seen
        marked = await _mark(driver, reg.blobs, let_go)
        report.referenced = len(marked)
        deleted: set[str] = set()
        async for info in reg.blobs.stored():
            digest = info.digest
            report.blobs += 1
            if str(digest) in marked:
                continue
            if info.mtime > begun - grace:
                report.kept_recent += 1
                continue
            if await _exists(driver, paths.gc_seen(digest)):
                report.kept_seen += 1
                continue
            if dry_run:
                report.deleted += 1
                report.bytes_freed += info.size
                continue
            if await _sweep(driver, reg.blobs, digest):
                deleted.add(str(digest))
                report.deleted += 1
                report.bytes_freed += info.size
            else:
                report.kept_seen += 1
        if deleted:
            report.links_removed = await _unlink(driver, reg.blobs, deleted)
        await _clear(driver, TRASH)
        if purge:
            report.uploads_purged = await reg.uploads.purge_stale(repositories, uploads_after)
            report.uploads_purged += await reg.objects.purge_stale_uploads(uploads_after)
    finally:
        try:
            await _clear(driver, SEEN)
        finally:
            await lease.release()
    await keep_reserve(driver)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("gc%s: %d untagged manifests let go, %d blobs, %d referenced, %d deleted "
             "(%d bytes), kept %d recent and %d seen, %d links removed, %.1f s",
             " (dry run)" if dry_run else "", report.manifests_deleted, report.blobs,
             report.referenced, report.deleted, report.bytes_freed, report.kept_recent,
             report.kept_seen, report.links_removed, report.seconds)
    return report


async def _recover_trash(driver: Driver, blobs: Any) -> None:
    """Put back what an interrupted collection (store down, process killed) left
    in the trash: it may have been named meanwhile, and this collection judges it
    again like any other blob."""
    async for info in driver.walk(TRASH):
        name = paths.gc_trashed(info.path)
        if name is None:
            await driver.delete(info.path)  # not ours
            continue
        if not await blobs.commit(Digest(*name), info.path, mark=False):
            await driver.delete(info.path)  # pushed again meanwhile: the copy goes


async def _exists(driver: Driver, path: str) -> bool:
    try:
        await driver.stat(path)
    except PathNotFound:
        return False
    return True


async def _sweep(driver: Driver, blobs: Any, digest: Digest) -> bool:
    """Trash the blob, look for a seen mark once more, then delete or put it back."""
    trash = paths.gc_trash(digest)
    if not await blobs.remove(digest, to=trash):
        return False
    if await _exists(driver, paths.gc_seen(digest)):
        if not await blobs.commit(digest, trash, mark=False):
            await driver.delete(trash)  # pushed again meanwhile: that copy serves
        return False
    await driver.delete(trash)
    return True


async def run_periodically(interval: float,
                           collect_once: Callable[[], Awaitable[Any]]) -> None:
    """[gc] interval: run `collect_once` (a `collect` with the server's settings)
    every `interval` seconds; one replica at a time, by the lease."""
    while True:
        await asyncio.sleep(interval)
        try:
            await collect_once()
        except GcBusy as exc:
            log.info("gc skipped: %s", exc)
        except Exception:  # housekeeping must never stop the server
            log.exception("gc failed")
