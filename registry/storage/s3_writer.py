"""The S3 driver's append-only writer (see s3_parts for the segment layout).

A writer session buffers up to one part in memory. If the session stays
smaller than a part it becomes one `put_object` at close; otherwise a
multipart upload streams its parts as they fill (one in flight while the next
fills), so memory per writer is about two parts whatever the total size.

* `close()` seals the session as one segment; the file is resumable anywhere.
* `truncate(n)` to the session's start (a failed PATCH) just drops the
  session; deeper truncates cut the stored segments.
* `seal()` is `close()`: the bytes are durable as segments. A caller that moves
  the file next (an upload into `blobs/`) seals, and `move` composes the
  segments straight into the destination, so the bytes are copied once
  server-side.
* `commit()` publishes one plain object at the path (one put when the whole
  file is still in the buffer, else the segments are composed into it).
* `cancel()` aborts the session and deletes the file.
"""

from __future__ import annotations

from typing import Protocol

from registry.storage.driver import PathNotFound, StorageError
from registry.storage.s3_client import S3Client
from registry.storage.s3_parts import MIN_PART, Multipart, seg_key

# Past this many parts each part doubles, so a session can exceed
# part_size * 10000 bytes (at the price of larger buffers for giant blobs).
PARTS_PER_STEP = 2000
MAX_PART = 5 << 30


class Segments(Protocol):
    """What a writer needs of the S3 driver (storage.s3.S3Driver): its client, its
    part size, and the segment operations. A Protocol, so that this module does not
    import the driver that imports it."""

    client: S3Client
    part_size: int

    async def truncate_segments(self, path: str, size: int) -> None: ...

    async def drop_segments(self, path: str, keys: list[str] | None = None) -> None: ...

    async def materialize(self, path: str) -> None: ...

    async def delete(self, path: str) -> None: ...


class S3Writer:
    """A writer session over the segments of one file (see the module docstring)."""

    def __init__(self, driver: Segments, path: str, key: str, start: int,
                 has_segments: bool) -> None:
        self._driver = driver
        self._client = driver.client
        self._path = path
        self._key = key
        self._start = start
        self._size = start
        self._has_segments = has_segments
        self._buf = bytearray()
        self._mpu: Multipart | None = None
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    def _part_size(self) -> int:
        parts = self._mpu.count if self._mpu is not None else 0
        size = self._driver.part_size << min(parts // PARTS_PER_STEP, 10)
        return max(MIN_PART, min(size, MAX_PART))

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise StorageError("write to a closed writer", "s3", self._path)
        self._buf += data
        self._size += len(data)
        size = self._part_size()
        while len(self._buf) >= size:
            if self._mpu is None:
                self._mpu = Multipart(self._client, seg_key(self._key, self._start), self._path)
                await self._mpu.start()
            part = bytes(memoryview(self._buf)[:size])
            del self._buf[:size]
            await self._mpu.part(part)
            size = self._part_size()

    async def writev(self, pieces: list[bytes]) -> None:
        """Write several pieces without joining them first."""
        for piece in pieces:
            await self.write(piece)

    async def _drop_session(self) -> None:
        mpu, self._mpu = self._mpu, None
        self._buf = bytearray()
        if mpu is not None:
            await mpu.abort()

    async def _seal(self) -> None:
        """Store this session's bytes as one segment (the file always exists after)."""
        if self._mpu is not None:
            mpu, self._mpu = self._mpu, None
            try:
                if self._buf:
                    await mpu.part(bytes(self._buf))
                await mpu.complete()
            except BaseException:
                await mpu.abort()
                raise
        elif self._buf or self._start == 0:
            await self._client.call("put_object", self._path,
                                    Key=seg_key(self._key, self._start), Body=bytes(self._buf))
        self._buf = bytearray()
        self._has_segments = True
        self._start = self._size

    async def truncate(self, size: int) -> None:
        if self._done:
            raise StorageError("truncate of a closed writer", "s3", self._path)
        if size > self._size:
            raise StorageError("truncate cannot grow a file", "s3", self._path)
        if size == self._start:
            await self._drop_session()
        elif size > self._start and self._mpu is None:
            del self._buf[size - self._start:]
        else:
            await self._seal()
            await self._driver.truncate_segments(self._path, size)
            self._start = size
        self._size = size

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            await self._seal()
        except BaseException:
            await self._drop_session()
            raise

    async def seal(self) -> None:
        if self._done:
            raise StorageError("seal of a closed writer", "s3", self._path)
        await self.close()

    async def commit(self) -> None:
        if self._done:
            raise StorageError("commit of a closed writer", "s3", self._path)
        if self._start == 0 and self._mpu is None:
            # Everything is in the buffer: one atomic put, then drop any old segments.
            self._done = True
            await self._client.call("put_object", self._path, Key=self._key,
                                    Body=bytes(self._buf))
            self._buf = bytearray()
            if self._has_segments:
                await self._driver.drop_segments(self._path)
            return
        await self.close()
        await self._driver.materialize(self._path)

    async def cancel(self) -> None:
        self._done = True
        await self._drop_session()
        try:
            await self._driver.delete(self._path)
        except PathNotFound:
            pass
