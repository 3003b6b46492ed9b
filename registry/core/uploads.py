"""Blob upload sessions: monolithic, chunked, streamed, resumable, and mounts.

An upload's bytes go straight from the request body to `_uploads/<id>/data`
while being hashed; they become a blob only after the digest is verified, by
a move into `blobs/`. The stored data is always a prefix of what the client
sent, so its size is the upload's offset, and a session can be resumed on
another process or replica after a crash. The running hash is kept in memory
by the process that received the bytes; any other process re-reads the data
to verify it (slower, never wrong).

A session opened with an owner (auth on: who opened it) keeps the owner in its
state file, so on every worker and after a restart a call naming another owner
finds no such upload (404 BLOB_UPLOAD_UNKNOWN), as if the id were made up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator

from registry.core.access import Caller
from registry.core.errors import (
    BlobUploadUnknown,
    DigestInvalid,
    RangeNotSatisfiable,
    RegistryError,
    SizeInvalid,
)
from registry.core.grammar import Digest, Hash, is_valid_upload_id
from registry.core.mounts import Mounts
from registry.core.protocols import Blobs
from registry.core.streaming import BLOCK, pump
from registry.core.types import UploadStatus
from registry.storage import paths
from registry.storage.driver import (
    Driver,
    FileWriter,
    PathNotFound,
    StorageError,
    StorageUnavailable,
)

# Single-request uploads up to this size are verified in memory and stored in one put.
SMALL_BLOB = 256 << 10
# Running hashes kept for uploads in progress in this process.
MAX_HASHERS = 4096
# A session's state file is a few hundred bytes; refuse to read a large one.
MAX_STATE = 64 << 10


class _Hashers:
    """Running sha256 per upload id, valid only at the offset it was left at."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[int, Hash]] = OrderedDict()

    def take(self, upload_id: str, offset: int) -> Hash | None:
        item = self._items.pop(upload_id, None)
        if item is not None and item[0] == offset:
            return item[1]
        return hashlib.sha256() if offset == 0 else None

    def put(self, upload_id: str, offset: int, hasher: Hash) -> None:
        self._items[upload_id] = (offset, hasher)
        while len(self._items) > MAX_HASHERS:
            self._items.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        self._items.pop(upload_id, None)


def _cut_off(exc: BaseException) -> bool:
    """The body stopped coming (client gone, drain at shutdown), as opposed to a
    refusal of ours or a failing store."""
    return not isinstance(exc, RegistryError | StorageError)


def _mismatch(digest: Digest, actual_hex: str) -> DigestInvalid:
    return DigestInvalid(detail={"expected": str(digest),
                                 "actual": f"{digest.algorithm}:{actual_hex}"})


class UploadService:
    def __init__(self, driver: Driver, blobs: Blobs, mounts: Mounts | None = None) -> None:
        self.driver = driver
        self.blobs = blobs
        self.mounts = mounts or Mounts(blobs)
        self._hashers = _Hashers()
        # Serialises requests on one upload in this process; entries vanish with their users.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # -- session lifecycle ---------------------------------------------------

    async def start(self, repo: str, owner: str | None = None) -> UploadStatus:
        upload_id = str(uuid.uuid4())
        state: dict[str, object] = {"id": upload_id, "repo": repo, "started": time.time()}
        if owner is not None:
            state["owner"] = owner
        await self.driver.put_content(paths.upload_state(repo, upload_id),
                                      json.dumps(state).encode())
        writer = await self.driver.writer(paths.upload_data(repo, upload_id))
        await writer.close()
        self._hashers.put(upload_id, 0, hashlib.sha256())
        return UploadStatus(upload_id, repo, 0)

    async def _check(self, repo: str, upload_id: str, owner: str | None = None) -> None:
        """The session exists and, when `owner` is given, is that owner's (a session
        opened without one, with auth off or before owners were kept, is anyone's)."""
        if not is_valid_upload_id(upload_id):
            raise BlobUploadUnknown(detail={"uuid": upload_id[:64]})
        path = paths.upload_state(repo, upload_id)
        try:
            if owner is None:
                await self.driver.stat(path)
                return
            state = json.loads(await self.driver.get_content(path, MAX_STATE))
        except StorageUnavailable:
            raise  # the store does not answer: 503 and Retry-After, not "unknown"
        except (PathNotFound, ValueError, StorageError):
            raise BlobUploadUnknown(detail={"uuid": upload_id}) from None
        if not isinstance(state, dict) or state.get("owner", owner) != owner:
            raise BlobUploadUnknown(detail={"uuid": upload_id})

    async def status(self, repo: str, upload_id: str,
                     owner: str | None = None) -> UploadStatus:
        await self._check(repo, upload_id, owner)
        try:
            size = (await self.driver.stat(paths.upload_data(repo, upload_id))).size
        except PathNotFound:
            raise BlobUploadUnknown(detail={"uuid": upload_id}) from None
        return UploadStatus(upload_id, repo, size)

    async def cancel(self, repo: str, upload_id: str, owner: str | None = None) -> None:
        await self._check(repo, upload_id, owner)
        # Under the upload's lock, like every other change to it: a cancel that
        # arrives while a chunk or the final PUT is streaming waits for it, and
        # then finds the upload finished (404) instead of deleting data under it.
        async with self._lock(upload_id):
            await self._check(repo, upload_id)
            self._hashers.drop(upload_id)
            try:
                await self.driver.delete(paths.upload_dir(repo, upload_id))
            except PathNotFound:
                raise BlobUploadUnknown(detail={"uuid": upload_id}) from None

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = asyncio.Lock()
        return lock

    # -- data ----------------------------------------------------------------

    async def append(self, repo: str, upload_id: str, chunks: AsyncIterator[bytes],
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> UploadStatus:
        """Append a chunk. With a Content-Range it must continue the upload
        exactly (416 otherwise); without one the body is streamed on."""
        await self._check(repo, upload_id, owner)
        async with self._lock(upload_id):
            # Again under the lock: a PUT that finished the upload meanwhile removed it.
            await self._check(repo, upload_id)
            return await self._append_locked(repo, upload_id, chunks, content_range,
                                             content_length)

    async def _append_locked(self, repo: str, upload_id: str, chunks: AsyncIterator[bytes],
                             content_range: tuple[int, int] | None,
                             content_length: int | None,
                             commit: bool = False) -> UploadStatus:
        """Append under the upload's lock; with `commit`, the writer is committed
        (made durable) instead of just closed, saving a reopen when finishing."""
        data_path = paths.upload_data(repo, upload_id)
        try:
            writer = await self.driver.writer(data_path, append=True)
        except PathNotFound:
            raise BlobUploadUnknown(detail={"uuid": upload_id}) from None
        offset = writer.size
        expected: int | None = content_length
        if content_range is not None:
            start, end = content_range
            if start != offset:
                await writer.close()
                raise RangeNotSatisfiable(
                    detail={"expectedStart": offset, "start": start},
                    upload_id=upload_id, repo=repo, offset=offset,
                )
            length = end - start + 1
            if content_length is not None and content_length != length:
                await writer.close()
                raise SizeInvalid("Content-Length does not match Content-Range",
                                  {"Content-Length": content_length, "Content-Range": length})
            expected = length
        hasher = self._hashers.take(upload_id, offset)
        try:
            written = await pump(chunks, writer, hasher, _cut_off)
            if expected is not None and written != expected:
                raise SizeInvalid("body length does not match the declared length",
                                  {"expected": expected, "received": written})
        except BaseException as exc:
            self._hashers.drop(upload_id)
            if _cut_off(exc):
                # A chunk cut off by the client or by the end of a drain at shutdown,
                # with a declared length or not: keep what arrived (it is a prefix of
                # what the client sent). The client asks where the upload stands
                # (GET, or the Range of a 416 when it repeats the chunk) and sends
                # the rest.
                await self._keep(writer)
            else:
                # Refused by us or failed in the store: the upload stays where it was.
                await self._rollback(writer, offset)
            raise
        if hasher is not None:
            self._hashers.put(upload_id, offset + written, hasher)
        await (writer.seal() if commit else writer.close())
        return UploadStatus(upload_id, repo, offset + written)

    async def _keep(self, writer: FileWriter) -> None:
        try:
            await writer.close()
        except (StorageError, OSError):
            pass

    async def _rollback(self, writer: FileWriter, offset: int) -> None:
        try:
            truncate = getattr(writer, "truncate", None)
            if truncate is not None:
                await truncate(offset)
            await writer.close()
        except (StorageError, OSError):
            pass

    async def _digest_of_data(self, repo: str, upload_id: str, algorithm: str, size: int,
                              ) -> str:
        """Hex digest of the upload data, from the running hash when we have it."""
        if algorithm == "sha256":
            hasher = self._hashers.take(upload_id, size)
            if hasher is not None:
                return hasher.hexdigest()
        hasher = hashlib.new(algorithm)
        loop = asyncio.get_running_loop()
        async for chunk in self.driver.reader(paths.upload_data(repo, upload_id),
                                              chunk_size=BLOCK):
            await loop.run_in_executor(None, hasher.update, chunk)
        return hasher.hexdigest()

    async def finish(self, repo: str, upload_id: str, digest: Digest,
                     chunks: AsyncIterator[bytes] | None = None,
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> int:
        """Complete an upload: append the last chunk, verify, publish. Returns the size."""
        await self._check(repo, upload_id, owner)
        async with self._lock(upload_id):
            await self._check(repo, upload_id)
            try:
                return await self._finish_locked(repo, upload_id, digest, chunks,
                                                 content_range, content_length)
            except PathNotFound:
                # Cancelled by another process meanwhile (the lock is per process).
                raise BlobUploadUnknown(detail={"uuid": upload_id}) from None

    async def _finish_locked(self, repo: str, upload_id: str, digest: Digest,
                             chunks: AsyncIterator[bytes] | None,
                             content_range: tuple[int, int] | None,
                             content_length: int | None) -> int:
        if chunks is not None:
            status = await self._append_locked(repo, upload_id, chunks, content_range,
                                               content_length, commit=True)
        else:
            status = await self.status(repo, upload_id)
        actual = await self._digest_of_data(repo, upload_id, digest.algorithm, status.size)
        if actual != digest.hex:
            self._hashers.drop(upload_id)
            await self._discard(repo, upload_id)
            raise _mismatch(digest, actual)
        data_path = paths.upload_data(repo, upload_id)
        if chunks is None:  # nothing was committed by this request
            writer = await self.driver.writer(data_path, append=True)
            await writer.seal()
        # A blob already there stays; the upload's copy goes with the session.
        await self.blobs.commit(digest, data_path)
        await self._discard(repo, upload_id)
        await self.mounts.arrived(repo, digest, status.size)
        return status.size

    async def _discard(self, repo: str, upload_id: str) -> None:
        try:
            await self.driver.delete(paths.upload_dir(repo, upload_id))
        except PathNotFound:
            pass

    async def upload_whole(self, repo: str, digest: Digest, chunks: AsyncIterator[bytes],
                           content_length: int | None) -> int:
        """Single-request upload (POST ?digest=): a session opened and finished at once.

        A small body of known length is verified in memory and stored with one
        atomic put, skipping the session's files entirely."""
        if content_length is not None and content_length <= SMALL_BLOB:
            return await self._upload_small(repo, digest, chunks, content_length)
        status = await self.start(repo)
        try:
            return await self.finish(repo, status.id, digest, chunks, None, content_length)
        except BaseException:
            await self._discard(repo, status.id)
            self._hashers.drop(status.id)
            raise

    async def _upload_small(self, repo: str, digest: Digest, chunks: AsyncIterator[bytes],
                            content_length: int) -> int:
        buf = bytearray()
        async for chunk in chunks:
            buf += chunk
            if len(buf) > content_length:
                break
        if len(buf) != content_length:
            raise SizeInvalid("body length does not match Content-Length",
                              {"expected": content_length, "received": len(buf)})
        data = bytes(buf)
        actual = hashlib.new(digest.algorithm, data).hexdigest()
        if actual != digest.hex:
            raise _mismatch(digest, actual)
        await self.blobs.put_small(data, digest)
        await self.mounts.arrived(repo, digest, len(data))
        return len(data)

    # -- housekeeping --------------------------------------------------------

    async def purge_stale(self, repositories: list[str], older_than: float) -> int:
        """Delete upload sessions untouched for `older_than` seconds; returns how many."""
        cutoff = time.time() - older_than
        purged = 0
        for repo in repositories:
            try:
                ids = await self.driver.list(paths.uploads_dir(repo))
            except PathNotFound:
                continue
            for upload_id in ids:
                if not is_valid_upload_id(upload_id):
                    continue
                touched = await self._last_touched(repo, upload_id)
                if touched is None or touched >= cutoff:
                    continue
                self._hashers.drop(upload_id)
                await self._discard(repo, upload_id)
                purged += 1
        return purged

    async def _last_touched(self, repo: str, upload_id: str) -> float | None:
        """When the session last changed: its data if it has any, else its state."""
        for path in (paths.upload_data(repo, upload_id), paths.upload_state(repo, upload_id)):
            try:
                return (await self.driver.stat(path)).mtime
            except PathNotFound:
                continue
        return None

    # -- mounts --------------------------------------------------------------

    async def mount(self, repo: str, digest: Digest, source: str | None,
                    caller: Caller) -> bool:
        """Link an existing blob into repo without moving bytes, by the mount rule
        (core/mounts.py) with `caller`'s rights: from `source` if the caller may pull
        it, else automatically. False (a normal upload follows) when it may not, or
        the blob is nowhere: the two look the same."""
        return await self.mounts.link(repo, digest, caller, source) is not None
