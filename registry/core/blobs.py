"""Blob store: content-addressed bytes stored once, linked into repositories."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from registry.core.cache import GLOBAL, GenerationCache, Generations, global_scope
from registry.core.errors import BlobUnknown, RangeUnsatisfiable
from registry.core.grammar import Digest
from registry.core.hooks import Hooks, emit
from registry.core.ranges import ByteRange, Unsatisfiable, parse_range
from registry.core.serving import BlobPlan, ByteStream, LocalFile, Redirect
from registry.core.types import StoredBlob
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound


def _range(header: str | None, size: int) -> ByteRange | None:
    try:
        return parse_range(header, size)
    except Unsatisfiable:
        raise RangeUnsatisfiable(size) from None


class BlobStore:
    """Content-addressed bytes stored once, linked into repositories, and the
    decision of how each blob request is served. The owner of `blobs/`: nothing
    else publishes a file there (`commit`, `put_small`) or takes one out (`remove`)."""

    def __init__(self, driver: Driver, hooks: Hooks, generations: Generations | None = None,
                 shared_store: bool = False, watch: Any = None) -> None:
        self.driver = driver
        self.watch = watch  # core.gc.GcWatch: whether a collection runs
        self.hooks = hooks
        self.generations = generations or Generations()
        # Positive answers only: a link stays until an unlink bumps its repository's
        # generation, a blob until a GC bumps the global one. Off when other
        # machines share the store.
        self._links: GenerationCache[int] = GenerationCache(
            self.generations, enabled=not shared_store)
        self._sizes: GenerationCache[int] = GenerationCache(
            self.generations, enabled=not shared_store, scope_of=global_scope)

    async def seen(self, digest: Digest) -> None:
        """While a garbage collection runs, a blob or manifest found to exist (or
        named by a push) is kept: record it (core/gc.py)."""
        if self.watch is not None and self.watch.active:
            await self.watch.seen(digest)

    async def size(self, digest: Digest) -> int | None:
        """Size of the stored bytes, or None if the registry has no such blob."""
        await self.seen(digest)
        return await self._sizes.fetch(digest, lambda: self._stat(paths.blob(digest)))

    async def linked(self, repo: str, digest: Digest) -> bool:
        found = await self._links.fetch((repo, digest),
                                        lambda: self._stat(paths.layer_link(repo, digest)))
        return found is not None

    async def _stat(self, path: str) -> int | None:
        try:
            return (await self.driver.stat(path)).size
        except PathNotFound:
            return None

    async def open_local(self, digest: Digest) -> tuple[int, int] | None:
        """An open file descriptor and the size of a blob on local disk, with one
        thread hop; None when the driver keeps blobs elsewhere. The caller closes it."""
        local = self.driver.local_path(paths.blob(digest))
        if local is None:
            return None

        def _open() -> tuple[int, int]:
            fd = os.open(local, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return fd, os.fstat(fd).st_size
            except BaseException:
                os.close(fd)
                raise

        try:
            return await asyncio.to_thread(_open)
        except FileNotFoundError:
            raise BlobUnknown(detail={"digest": str(digest)}) from None

    async def serve(self, repo: str, digest: Digest, range_header: str | None = None,
                    with_body: bool = True) -> BlobPlan:
        """What to send for a GET (`with_body`) or HEAD of a blob in a repository.

        One link check (cached), then: on local disk, the open file (one thread
        hop, which also gives the size); elsewhere the size, and a redirect for
        a whole-blob GET when the store offers one, else a stream. BLOB_UNKNOWN
        if the repository has no such blob; 416 for a range outside it."""
        if not await self.linked(repo, digest):
            raise BlobUnknown(detail={"digest": str(digest)})
        await self.seen(digest)
        opened = await self.open_local(digest) if with_body else None
        if opened is not None:
            fd, local_size = opened
            try:
                rng = _range(range_header, local_size)
            except BaseException:
                await asyncio.to_thread(os.close, fd)
                raise
            self.hooks.blob_pulled(repo, digest)
            return BlobPlan(digest, local_size, rng, LocalFile(fd))
        size = await self.size(digest)
        if size is None:
            raise BlobUnknown(detail={"digest": str(digest)})
        plan = BlobPlan(digest, size, _range(range_header, size))
        if not with_body:
            return plan
        self.hooks.blob_pulled(repo, digest)
        if plan.range is None:
            url = await self.redirect_url(digest)
            if url:
                plan.body = Redirect(url)
                return plan
        plan.body = ByteStream(self.reader(digest, plan.offset, plan.length))
        return plan

    async def link(self, repo: str, digest: Digest, size: int) -> None:
        await self.seen(digest)
        await self.driver.put_content(paths.layer_link(repo, digest), str(digest).encode())
        await emit(self.hooks.blob_linked(repo, digest, size))

    async def unlink(self, repo: str, digest: Digest) -> None:
        try:
            await self.driver.delete(paths.layer_link(repo, digest))
        except PathNotFound:
            raise BlobUnknown(detail={"digest": str(digest)}) from None
        self.generations.bump(repo)
        await emit(self.hooks.blob_unlinked(repo, digest))

    async def put_small(self, data: bytes, digest: Digest) -> None:
        """Store small content (manifests) whose digest the caller has verified."""
        if await self.size(digest) is None:
            await self.driver.put_content(paths.blob(digest), data)

    async def commit(self, digest: Digest, staged: str, mark: bool = True) -> bool:
        """Publish the file at `staged`, whose bytes the caller wrote and checked
        against `digest` (an upload's data, an S3 object's fresh bytes, a node
        cache's download, the collector's trash), by moving it into `blobs/`:
        readers see the whole blob or nothing. False, leaving `staged` to the
        caller, when the blob is there already. `mark`: record the blob as found
        for a running collection (core/gc.py), as every other lookup does; off
        only for the collector putting back what it took out."""
        if mark:
            await self.seen(digest)
        if await self._stat(paths.blob(digest)) is not None:
            return False
        await self.driver.move(staged, paths.blob(digest))
        return True

    async def remove(self, digest: Digest, to: str | None = None) -> bool:
        """Take blob `digest` out of `blobs/`: deleted, or moved to `to` (the
        collector's trash, scrub's quarantine). Every worker's cached sizes go
        with it (the global generation); repositories' links stay (their owners
        remove them). False when there was no such blob."""
        path = paths.blob(digest)
        try:
            if to is None:
                await self.driver.delete(path)
            else:
                await self.driver.move(path, to)
        except PathNotFound:
            return False
        finally:
            self.generations.bump(GLOBAL)
        return True

    async def stored(self) -> AsyncIterator[StoredBlob]:
        """Every blob in the store, in path order (a walk of `blobs/`; strays skipped)."""
        async for info in self.driver.walk(paths.BLOBS):
            if (name := paths.blob_of(info.path)) is not None:
                yield StoredBlob(Digest(*name), info.size, info.mtime)

    async def read(self, digest: Digest, max_bytes: int | None = None) -> bytes:
        try:
            return await self.driver.get_content(paths.blob(digest), max_bytes)
        except PathNotFound:
            raise BlobUnknown(detail={"digest": str(digest)}) from None

    def reader(self, digest: Digest, offset: int = 0,
               length: int | None = None) -> AsyncIterator[bytes]:
        return self.driver.reader(paths.blob(digest), offset, length)

    async def redirect_url(self, digest: Digest) -> str | None:
        return await self.driver.redirect_url(paths.blob(digest))
