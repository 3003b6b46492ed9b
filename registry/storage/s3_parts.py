"""Segments and multipart uploads: how the S3 driver appends to objects S3 cannot append to.

A file written through a writer is kept, until it is committed, as *segments*:
objects named by their starting offset next to the file's own key,

    <key>!/<offset as 16 hex digits>

Each writer session (one PATCH of an upload) adds one segment, streamed with a
multipart upload in `part_size` parts when it is larger than one part, so
memory stays bounded whatever the size. Because everything is in the store,
another process or replica can reopen the file with `writer(append=True)`, see
its size (the end of the last contiguous segment) and continue. `!` can never
appear in a driver path, so segments never collide with a file and `list()`
shows `<name>!` as the file `<name>`.

`compose` builds one object from byte ranges of others server-side: ranges of
at least 5 MiB become UploadPartCopy parts, smaller runs are read and
re-uploaded in `part_size` buffers (S3 wants every part but the last to be
5 MiB or more). It is how segments become a blob (`move`), how a committed
file is materialised, and how a truncate cuts a segment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from registry.storage.driver import PathNotFound, StorageError
from registry.storage.s3_client import S3Client

log = logging.getLogger("registry.storage.s3")

SEG = "!"
MIN_PART = 5 << 20
# Bytes per UploadPartCopy, and the most CopyObject may copy in one go.
COPY_PART = 1 << 30
MAX_COPY_OBJECT = 5 << 30
MAX_PARTS = 10_000


def seg_prefix(key: str) -> str:
    return f"{key}{SEG}/"


def seg_key(key: str, offset: int) -> str:
    return f"{key}{SEG}/{offset:016x}"


@dataclass(frozen=True, slots=True)
class Source:
    """`length` bytes of object `key` from `start`; `size` is the whole object's."""

    key: str
    start: int
    length: int
    size: int


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    start: int
    size: int
    mtime: float

    @property
    def end(self) -> int:
        return self.start + self.size

    def source(self) -> Source:
        return Source(self.key, 0, self.size, self.size)


async def list_keys(client: S3Client, prefix: str, path: str,
                    delimiter: str | None = None, page: int = 1000
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """Every object (as listed) and common prefix under `prefix`, all pages."""
    objects: list[dict[str, Any]] = []
    prefixes: list[str] = []
    kw: dict[str, Any] = {"Prefix": prefix, "MaxKeys": page}
    if delimiter:
        kw["Delimiter"] = delimiter
    while True:
        listed = await client.call("list_objects_v2", path, **kw)
        objects += listed.get("Contents", []) or []
        prefixes += [p["Prefix"] for p in listed.get("CommonPrefixes", []) or []]
        token = listed.get("NextContinuationToken")
        if not listed.get("IsTruncated") or not token:
            return objects, prefixes
        kw["ContinuationToken"] = token


async def list_segments(client: S3Client, key: str, path: str
                        ) -> tuple[list[Segment], list[str]]:
    """The contiguous chain of segments from offset 0, and any stale keys beyond
    a gap (left by concurrent writers or a crash; never part of the file)."""
    objects, _ = await list_keys(client, seg_prefix(key), path)
    found: list[Segment] = []
    stale: list[str] = []
    for obj in objects:
        name = obj["Key"][len(seg_prefix(key)):]
        try:
            start = int(name, 16)
        except ValueError:
            stale.append(obj["Key"])
            continue
        found.append(Segment(obj["Key"], start, int(obj["Size"]),
                             obj["LastModified"].timestamp()))
    found.sort(key=lambda s: s.start)
    chain: list[Segment] = []
    end = 0
    for seg in found:
        if seg.start == end and (seg.size > 0 or not chain):
            chain.append(seg)
            end = seg.end
        else:
            stale.append(seg.key)
    return chain, stale


async def delete_keys(client: S3Client, keys: list[str], path: str) -> None:
    for i in range(0, len(keys), 1000):
        batch = keys[i:i + 1000]
        out = await client.call("delete_objects", path, Delete={
            "Objects": [{"Key": k} for k in batch], "Quiet": True})
        errors = [e for e in out.get("Errors", []) or [] if e.get("Code") != "NoSuchKey"]
        if errors:
            raise StorageError(f"delete failed: {errors[0].get('Code')} "
                               f"{errors[0].get('Message', '')}", "s3", path)


async def get_range(client: S3Client, key: str, start: int, length: int, path: str) -> bytes:
    """`length` bytes of an object from `start`, read whole (callers keep it small)."""
    s3 = await client.client()

    async def fetch() -> bytes:
        r = await s3.get_object(Bucket=client.bucket, Key=key,
                                Range=f"bytes={start}-{start + length - 1}")
        async with r["Body"] as body:
            got: bytes = await body.read()
            return got

    data = await client.retrying("get_object", path, fetch, client.transfer_timeout)
    if len(data) != length:
        raise StorageError(f"short read of {key}: {len(data)} of {length} bytes", "s3", path)
    return data


class Multipart:
    """One multipart upload with at most `concurrency` parts in flight."""

    def __init__(self, client: S3Client, key: str, path: str, concurrency: int = 1) -> None:
        self.client = client
        self.key = key
        self.path = path
        self.concurrency = max(1, concurrency)
        self.upload_id: str | None = None
        self.etags: dict[int, str] = {}
        self.count = 0
        self.bytes = 0
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        r = await self.client.call("create_multipart_upload", self.path, Key=self.key)
        self.upload_id = r["UploadId"]

    async def _submit(self, run: Callable[[int], Awaitable[None]]) -> None:
        if self.count >= MAX_PARTS:
            raise StorageError("too many parts for one object", "s3", self.path)
        while len(self._pending) >= self.concurrency:
            done, self._pending = await asyncio.wait(self._pending,
                                                     return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        self.count += 1
        self._pending.add(asyncio.ensure_future(run(self.count)))

    async def part(self, data: bytes | bytearray) -> None:
        self.bytes += len(data)

        async def upload(n: int) -> None:
            r = await self.client.call("upload_part", self.path,
                                       deadline=self.client.transfer_timeout, Key=self.key,
                                       UploadId=self.upload_id, PartNumber=n, Body=data)
            self.etags[n] = r["ETag"]

        await self._submit(upload)

    async def copy_part(self, key: str, start: int, length: int) -> None:
        self.bytes += length

        async def copy(n: int) -> None:
            r = await self.client.call(
                "upload_part_copy", self.path, deadline=self.client.copy_deadline(length),
                Key=self.key, UploadId=self.upload_id, PartNumber=n,
                CopySource={"Bucket": self.client.bucket, "Key": key},
                CopySourceRange=f"bytes={start}-{start + length - 1}")
            self.etags[n] = r["CopyPartResult"]["ETag"]

        await self._submit(copy)

    async def _drain(self) -> None:
        pending, self._pending = self._pending, set()
        results = await asyncio.gather(*pending, return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                raise res

    async def complete(self) -> None:
        await self._drain()
        parts = [{"PartNumber": n, "ETag": self.etags[n]} for n in sorted(self.etags)]
        await self.client.call("complete_multipart_upload", self.path,
                               deadline=self.client.copy_deadline(self.bytes), Key=self.key,
                               UploadId=self.upload_id, MultipartUpload={"Parts": parts})

    async def abort(self) -> None:
        """Best effort: the driver's janitor aborts whatever this misses."""
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._pending = set()
        if self.upload_id is None:
            return
        try:
            await self.client.call("abort_multipart_upload", self.path, Key=self.key,
                                   UploadId=self.upload_id)
        except (StorageError, PathNotFound) as exc:
            log.warning("could not abort multipart upload of %s: %s", self.key, exc)


async def compose(client: S3Client, sources: list[Source], dst: str, path: str,
                  part_size: int) -> None:
    """Write the concatenation of `sources` to object `dst`, server-side where it can."""
    total = sum(s.length for s in sources)
    if total == 0:
        await client.call("put_object", path, Key=dst, Body=b"")
        return
    whole = [s for s in sources if s.length > 0]
    if (len(whole) == 1 and whole[0].start == 0 and whole[0].length == whole[0].size
            and whole[0].size <= MAX_COPY_OBJECT and whole[0].key != dst):
        await client.call("copy_object", path, deadline=client.copy_deadline(total), Key=dst,
                          CopySource={"Bucket": client.bucket, "Key": whole[0].key})
        return
    if total <= part_size:
        # Small: one read, one write.
        data = b"".join([await get_range(client, s.key, s.start, s.length, path)
                         for s in whole])
        await client.call("put_object", path, Key=dst, Body=data)
        return
    mpu = Multipart(client, dst, path, concurrency=4)
    await mpu.start()
    try:
        buf = bytearray()
        for src in whole:
            pos, end = src.start, src.start + src.length
            while pos < end:
                rest = end - pos
                if not buf and rest >= MIN_PART:
                    take = min(rest, COPY_PART)
                    await mpu.copy_part(src.key, pos, take)
                else:
                    take = min(rest, part_size - len(buf))
                    buf += await get_range(client, src.key, pos, take, path)
                    if len(buf) >= part_size:
                        await mpu.part(bytes(buf))
                        buf = bytearray()
                pos += take
        if buf:
            await mpu.part(bytes(buf))
        await mpu.complete()
    except BaseException:
        await mpu.abort()
        raise
