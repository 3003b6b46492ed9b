"""Multipart uploads of the S3-compatible API.

    multipart/<bucket>/<upload id>/state              key, content type, start time
    multipart/<bucket>/<upload id>/parts/<5 digits>   part record: ETag, size, data id
    multipart/<bucket>/<upload id>/data/<id>          the part's bytes

Parts arrive in parallel and in any order, each streamed to its own fresh
data file while its MD5 is computed (sealed, not committed: on the s3 driver
`compose` reads a sealed file's segments directly, saving a copy), then
recorded by one atomic put of its record (a part uploaded again replaces the
record, then its old bytes go). Uploads idle for `[storage] upload_purge_after`
are deleted with the OCI upload sessions (`purge_stale`).
Completing checks the client's list against the records (InvalidPart,
InvalidPartOrder, EntityTooSmall), composes the parts server-side with
`Driver.compose` into fresh object bytes (atomic: whole or nothing) and
publishes them as any PutObject is published (`ObjectStore.publish`: a
content-addressed key is verified and lands in the blob store), then removes
the upload. The ETag is S3's: the MD5 of the parts' binary MD5s, `-<count>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from registry.core.errors import ObjectError
from registry.core.object_writes import stream_to
from registry.core.objects import ObjectStore, entry_path, new_id
from registry.core.types import Checks, ObjectInfo, PartInfo
from registry.storage import paths
from registry.storage.driver import PathNotFound

MIN_PART = 5 << 20
MAX_PARTS = 10_000
STATE_MAX = 16 << 10
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def no_such_upload() -> ObjectError:
    return ObjectError("NoSuchUpload", "the specified multipart upload does not exist", 404)


class MultipartUploads:
    """CreateMultipartUpload, UploadPart, Complete, Abort and ListParts over one
    ObjectStore (see the module docstring)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.driver = store.driver

    async def create(self, bucket: str, key: str, content_type: str | None) -> str:
        entry_path(bucket, key)  # a key we cannot store is refused now, not at the end
        self.store.key_class(key)
        await self.store.create_bucket(bucket)
        upload_id = new_id()
        state = {"key": key, "type": content_type, "started": time.time()}
        await self.driver.put_content(paths.multipart_state(bucket, upload_id),
                                      json.dumps(state).encode())
        return upload_id

    async def _state(self, bucket: str, key: str, upload_id: str) -> dict[str, Any]:
        entry_path(bucket, key)
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise no_such_upload()
        try:
            state: dict[str, Any] = json.loads(await self.driver.get_content(
                paths.multipart_state(bucket, upload_id), STATE_MAX))
        except PathNotFound:
            raise no_such_upload() from None
        if state.get("key") != key:
            raise no_such_upload()  # an upload id is only valid with its own key
        return state

    async def upload_part(self, bucket: str, key: str, upload_id: str, number: int,
                          chunks: AsyncIterator[bytes], checks: Checks) -> str:
        """Store one part; returns its ETag (unquoted MD5 hex)."""
        if not 1 <= number <= MAX_PARTS:
            raise ObjectError("InvalidArgument",
                              f"part number must be an integer between 1 and {MAX_PARTS}")
        await self._state(bucket, key, upload_id)
        data_id = new_id()
        written = await stream_to(self.driver, paths.multipart_data(bucket, upload_id, data_id),
                                  chunks, checks, want_sha256=False, publish=False)
        record_path = paths.multipart_part(bucket, upload_id, number)
        old = await self._part(bucket, upload_id, number)
        record = {"etag": written.md5.hex(), "size": written.size, "data": data_id,
                  "modified": time.time()}
        await self.driver.put_content(record_path, json.dumps(record).encode())
        if old is not None:
            await self._drop(paths.multipart_data(bucket, upload_id, old.data))
        return written.md5.hex()

    async def _part(self, bucket: str, upload_id: str, number: int) -> PartInfo | None:
        try:
            raw = await self.driver.get_content(paths.multipart_part(bucket, upload_id, number),
                                                STATE_MAX)
        except PathNotFound:
            return None
        doc = json.loads(raw)
        return PartInfo(number, doc["etag"], int(doc["size"]), doc["data"],
                        float(doc.get("modified", 0.0)))

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        await self._state(bucket, key, upload_id)
        try:
            names = await self.driver.list(paths.multipart_parts_dir(bucket, upload_id))
        except PathNotFound:
            return []
        numbers = [int(n) for n in names if n.isdigit()]
        parts = await asyncio.gather(*(self._part(bucket, upload_id, n) for n in numbers))
        return [p for p in parts if p is not None]

    async def complete(self, bucket: str, key: str, upload_id: str,
                       wanted: list[tuple[int, str]]) -> ObjectInfo:
        """Assemble the parts the client lists, as (number, ETag), in order."""
        state = await self._state(bucket, key, upload_id)
        if not wanted:
            raise ObjectError("MalformedXML", "you must specify at least one part")
        if len(wanted) > MAX_PARTS:
            raise ObjectError("MalformedXML", f"at most {MAX_PARTS} parts")
        numbers = [n for n, _ in wanted]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise ObjectError("InvalidPartOrder",
                              "the list of parts was not in ascending order")
        parts = await self._parts(bucket, upload_id, numbers)
        for (number, etag), part in zip(wanted, parts, strict=True):
            if part is None or etag.strip().strip('"').lower() != part.etag:
                raise ObjectError("InvalidPart", f"part {number} was not uploaded, or its "
                                  "ETag does not match")
        checked = [p for p in parts if p is not None]
        for part in checked[:-1]:
            if part.size < MIN_PART:
                raise ObjectError("EntityTooSmall", f"part {part.number} is smaller than "
                                  "the minimum allowed size (5 MiB)")
        md5s = b"".join(bytes.fromhex(p.etag) for p in checked)
        etag = f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(checked)}"
        data_id = new_id()
        scratch = paths.object_data(bucket, data_id)
        size = await self.driver.compose(
            scratch, [paths.multipart_data(bucket, upload_id, p.data) for p in checked])
        try:
            info = await self.store.publish(bucket, key, data_id, size, etag, state.get("type"))
        except BaseException:
            await self._drop(scratch)  # publish dropped it already unless it failed early
            raise
        await self._drop(paths.multipart_dir(bucket, upload_id))
        return info

    async def _parts(self, bucket: str, upload_id: str,
                     numbers: list[int]) -> list[PartInfo | None]:
        gate = asyncio.Semaphore(16)

        async def one(n: int) -> PartInfo | None:
            if not 1 <= n <= MAX_PARTS:
                return None
            async with gate:
                return await self._part(bucket, upload_id, n)

        return list(await asyncio.gather(*(one(n) for n in numbers)))

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
        await self._state(bucket, key, upload_id)
        await self._drop(paths.multipart_dir(bucket, upload_id))

    async def purge_stale(self, older_than: float) -> int:
        """Delete uploads with no activity (no part written) for `older_than`
        seconds, in every bucket; returns how many went."""
        cutoff = time.time() - older_than
        try:
            buckets = await self.driver.list(paths.MULTIPART)
        except PathNotFound:
            return 0
        purged = 0
        for bucket in buckets:
            try:
                ids = await self.driver.list(paths.multipart_bucket_dir(bucket))
            except (PathNotFound, paths.InvalidBucketName):
                continue
            for upload_id in ids:
                if not _UPLOAD_ID.fullmatch(upload_id):
                    continue
                upload = paths.multipart_dir(bucket, upload_id)
                newest = max([f.mtime async for f in self.driver.walk(upload)], default=None)
                if newest is not None and newest < cutoff:
                    await self._drop(upload)
                    purged += 1
        return purged

    async def _drop(self, path: str) -> None:
        try:
            await self.driver.delete(path)
        except PathNotFound:
            pass
