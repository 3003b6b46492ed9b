"""The S3-compatible object API's one service: buckets, objects, listings and
multipart uploads (core.objects, core.object_listing, core.multipart) behind
the `Objects` Protocol the handlers use."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from registry.core.access import NOBODY, Caller
from registry.core.grammar import Digest
from registry.core.multipart import MultipartUploads
from registry.core.object_keys import KeyClassifier, plain_keys
from registry.core.object_listing import list_objects
from registry.core.objects import ObjectStore
from registry.core.protocols import Blobs
from registry.core.types import BucketInfo, Checks, ListPage, ObjectInfo, ObjectPlan, PartInfo
from registry.storage.driver import Driver


class ObjectService:
    """Buckets and objects stored in the driver, the keys `keys` says are
    content-addressed in the blob store (see core.objects for the layout and its
    guarantees)."""

    def __init__(self, driver: Driver, blobs: Blobs,
                 keys: KeyClassifier = plain_keys) -> None:
        self.store = ObjectStore(driver, blobs, keys)
        self.multipart = MultipartUploads(self.store)

    async def bucket_exists(self, bucket: str) -> bool:
        return await self.store.bucket_exists(bucket)

    async def create_bucket(self, bucket: str) -> bool:
        return await self.store.create_bucket(bucket)

    async def buckets(self) -> list[BucketInfo]:
        return await self.store.buckets()

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        return await self.store.head(bucket, key)

    async def serve(self, bucket: str, key: str, range_header: str | None = None,
                    with_body: bool = True, if_match: str | None = None,
                    if_none_match: str | None = None) -> ObjectPlan:
        return await self.store.serve(bucket, key, range_header, with_body, if_match,
                                      if_none_match)

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes], checks: Checks,
                  content_type: str | None = None, caller: Caller = NOBODY) -> ObjectInfo:
        # Core links nothing on a put: `caller` is for decorators (the Spack bridge).
        return await self.store.put(bucket, key, chunks, checks, content_type)

    async def delete(self, bucket: str, key: str) -> bool:
        return await self.store.delete(bucket, key)

    async def put_blob_entry(self, bucket: str, key: str, digest: Digest, size: int,
                             content_type: str | None = None) -> ObjectInfo:
        return await self.store.put_blob_entry(bucket, key, digest, size, content_type)

    async def list(self, bucket: str, prefix: str = "", delimiter: str = "",
                   max_keys: int = 1000, start_after: str = "",
                   token: str | None = None) -> ListPage:
        return await list_objects(self.store, bucket, prefix, delimiter, max_keys,
                                  start_after, token)

    async def create_multipart(self, bucket: str, key: str, content_type: str | None) -> str:
        return await self.multipart.create(bucket, key, content_type)

    async def upload_part(self, bucket: str, key: str, upload_id: str, number: int,
                          chunks: AsyncIterator[bytes], checks: Checks) -> str:
        return await self.multipart.upload_part(bucket, key, upload_id, number, chunks, checks)

    async def complete_multipart(self, bucket: str, key: str, upload_id: str,
                                 parts: builtins.list[tuple[int, str]],
                                 caller: Caller = NOBODY) -> ObjectInfo:
        return await self.multipart.complete(bucket, key, upload_id, parts)

    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        await self.multipart.abort(bucket, key, upload_id)

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> builtins.list[PartInfo]:
        return await self.multipart.list_parts(bucket, key, upload_id)

    async def purge_stale_uploads(self, older_than: float) -> int:
        return await self.multipart.purge_stale(older_than)
