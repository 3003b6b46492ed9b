"""Decorator bases: one per Protocol of core.protocols, forwarding every method to
`self.inner`.

A decorator (the node cache, the Spack bridges, quotas, a policy guard) subclasses
the base of the Protocol it wraps and overrides only what it changes; everything
else reaches the wrapped service through a real method, so a type checker sees
each one (no `__getattr__` forwarding) and a method added to a Protocol is added
here once, not in every decorator. tests/core/test_decorators.py checks that each
base implements every member of its Protocol.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any

from registry.core.access import NOBODY, Caller
from registry.core.grammar import Digest
from registry.core.hooks import Hooks
from registry.core.manifest_format import Manifest
from registry.core.protocols import (
    Blobs,
    Catalog,
    Manifests,
    Objects,
    Referrers,
    Tags,
    Uploads,
    View,
)
from registry.core.serving import BlobPlan
from registry.core.types import (
    BucketInfo,
    Checks,
    ListPage,
    ObjectInfo,
    ObjectPlan,
    PartInfo,
    StoredBlob,
    StoredManifest,
    UploadStatus,
)


class BlobsDecorator(Blobs):
    """A `Blobs` that forwards every call to `inner`: subclass it and override."""

    def __init__(self, inner: Blobs) -> None:
        self.inner = inner

    async def size(self, digest: Digest) -> int | None:
        return await self.inner.size(digest)

    async def seen(self, digest: Digest) -> None:
        await self.inner.seen(digest)

    async def linked(self, repo: str, digest: Digest) -> bool:
        return await self.inner.linked(repo, digest)

    async def serve(self, repo: str, digest: Digest, range_header: str | None = None,
                    with_body: bool = True) -> BlobPlan:
        return await self.inner.serve(repo, digest, range_header, with_body)

    async def link(self, repo: str, digest: Digest, size: int) -> None:
        await self.inner.link(repo, digest, size)

    async def unlink(self, repo: str, digest: Digest) -> None:
        await self.inner.unlink(repo, digest)

    async def put_small(self, data: bytes, digest: Digest) -> None:
        await self.inner.put_small(data, digest)

    async def commit(self, digest: Digest, staged: str, mark: bool = True) -> bool:
        return await self.inner.commit(digest, staged, mark)

    async def remove(self, digest: Digest, to: str | None = None) -> bool:
        return await self.inner.remove(digest, to)

    def stored(self) -> AsyncIterator[StoredBlob]:
        return self.inner.stored()

    async def read(self, digest: Digest, max_bytes: int | None = None) -> bytes:
        return await self.inner.read(digest, max_bytes)

    def reader(self, digest: Digest, offset: int = 0,
               length: int | None = None) -> AsyncIterator[bytes]:
        return self.inner.reader(digest, offset, length)


class UploadsDecorator(Uploads):
    """An `Uploads` that forwards every call to `inner`: subclass it and override."""

    def __init__(self, inner: Uploads) -> None:
        self.inner = inner

    async def start(self, repo: str, owner: str | None = None) -> UploadStatus:
        return await self.inner.start(repo, owner)

    async def status(self, repo: str, upload_id: str,
                     owner: str | None = None) -> UploadStatus:
        return await self.inner.status(repo, upload_id, owner)

    async def append(self, repo: str, upload_id: str, chunks: AsyncIterator[bytes],
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> UploadStatus:
        return await self.inner.append(repo, upload_id, chunks, content_range, content_length,
                                       owner)

    async def finish(self, repo: str, upload_id: str, digest: Digest,
                     chunks: AsyncIterator[bytes] | None = None,
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> int:
        return await self.inner.finish(repo, upload_id, digest, chunks, content_range,
                                       content_length, owner)

    async def cancel(self, repo: str, upload_id: str, owner: str | None = None) -> None:
        await self.inner.cancel(repo, upload_id, owner)

    async def upload_whole(self, repo: str, digest: Digest, chunks: AsyncIterator[bytes],
                           content_length: int | None) -> int:
        return await self.inner.upload_whole(repo, digest, chunks, content_length)

    async def mount(self, repo: str, digest: Digest, source: str | None,
                    caller: Caller) -> bool:
        return await self.inner.mount(repo, digest, source, caller)

    async def purge_stale(self, repositories: builtins.list[str], older_than: float) -> int:
        return await self.inner.purge_stale(repositories, older_than)


class ManifestsDecorator(Manifests):
    """A `Manifests` that forwards every call to `inner`: subclass it and override."""

    def __init__(self, inner: Manifests) -> None:
        self.inner = inner

    async def get(self, repo: str, reference: str, with_body: bool = True) -> StoredManifest:
        return await self.inner.get(repo, reference, with_body)

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]:
        return await self.inner.put(repo, reference, data, content_type)

    async def mirror(self, repo: str, digest: Digest, data: bytes,
                     media_type: str | None, tag: str | None = None) -> Manifest:
        return await self.inner.mirror(repo, digest, data, media_type, tag)

    async def delete(self, repo: str, reference: str) -> None:
        await self.inner.delete(repo, reference)

    async def delete_untagged(self, repo: str, digest: Digest,
                              named: Callable[[], Awaitable[bool]]) -> bool:
        return await self.inner.delete_untagged(repo, digest, named)

    async def exists(self, repo: str, digest: Digest) -> bool:
        return await self.inner.exists(repo, digest)

    async def read_bytes(self, digest: Digest) -> bytes:
        return await self.inner.read_bytes(digest)

    async def read_config(self, manifest: Manifest, repo: str | None = None) -> bytes | None:
        return await self.inner.read_config(manifest, repo)

    async def read_artifact(self, manifest: Manifest) -> str | None:
        return await self.inner.read_artifact(manifest)


class TagsDecorator(Tags):
    """A `Tags` that forwards every call to `inner`: subclass it and override."""

    def __init__(self, inner: Tags) -> None:
        self.inner = inner

    async def resolve(self, repo: str, reference: str) -> Digest:
        return await self.inner.resolve(repo, reference)

    async def set(self, repo: str, tag: str, digest: Digest) -> None:
        await self.inner.set(repo, tag, digest)

    async def delete(self, repo: str, tag: str) -> None:
        await self.inner.delete(repo, tag)

    async def list(self, repo: str) -> builtins.list[str]:
        return await self.inner.list(repo)

    async def view(self, repo: str, key: Hashable,
                   build: Callable[[builtins.list[str]], Awaitable[View]]) -> View:
        return await self.inner.view(repo, key, build)

    async def targets(self, repo: str) -> dict[str, Digest]:
        return await self.inner.targets(repo)

    async def pointing_at(self, repo: str, digest: Digest) -> builtins.list[str]:
        return await self.inner.pointing_at(repo, digest)


class ReferrersDecorator(Referrers):
    """A `Referrers` that forwards every call to `inner`: subclass it and override."""

    def __init__(self, inner: Referrers) -> None:
        self.inner = inner

    async def list(self, repo: str, subject: Digest,
                   artifact_type: str | None = None) -> builtins.list[dict[str, Any]]:
        return await self.inner.list(repo, subject, artifact_type)

    def index(self, descriptors: builtins.list[dict[str, Any]]) -> dict[str, Any]:
        return self.inner.index(descriptors)


class CatalogDecorator(Catalog):
    """A `Catalog` that forwards every call to `inner`: subclass it and override."""

    def __init__(self, inner: Catalog) -> None:
        self.inner = inner

    async def exists(self, repo: str) -> bool:
        return await self.inner.exists(repo)

    async def repositories(self) -> list[str]:
        return await self.inner.repositories()

    async def layers(self, repo: str) -> list[Digest]:
        return await self.inner.layers(repo)

    async def revisions(self, repo: str) -> list[Digest]:
        return await self.inner.revisions(repo)


class ObjectsDecorator(Objects):
    """An `Objects` that forwards every call to `inner`: subclass it and override."""

    def __init__(self, inner: Objects) -> None:
        self.inner = inner

    async def bucket_exists(self, bucket: str) -> bool:
        return await self.inner.bucket_exists(bucket)

    async def create_bucket(self, bucket: str) -> bool:
        return await self.inner.create_bucket(bucket)

    async def buckets(self) -> builtins.list[BucketInfo]:
        return await self.inner.buckets()

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        return await self.inner.head(bucket, key)

    async def serve(self, bucket: str, key: str, range_header: str | None = None,
                    with_body: bool = True, if_match: str | None = None,
                    if_none_match: str | None = None) -> ObjectPlan:
        return await self.inner.serve(bucket, key, range_header, with_body, if_match,
                                      if_none_match)

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes], checks: Checks,
                  content_type: str | None = None, caller: Caller = NOBODY) -> ObjectInfo:
        return await self.inner.put(bucket, key, chunks, checks, content_type, caller)

    async def delete(self, bucket: str, key: str) -> bool:
        return await self.inner.delete(bucket, key)

    async def put_blob_entry(self, bucket: str, key: str, digest: Digest, size: int,
                             content_type: str | None = None) -> ObjectInfo:
        return await self.inner.put_blob_entry(bucket, key, digest, size, content_type)

    async def list(self, bucket: str, prefix: str = "", delimiter: str = "",
                   max_keys: int = 1000, start_after: str = "",
                   token: str | None = None) -> ListPage:
        return await self.inner.list(bucket, prefix, delimiter, max_keys, start_after, token)

    async def create_multipart(self, bucket: str, key: str,
                               content_type: str | None) -> str:
        return await self.inner.create_multipart(bucket, key, content_type)

    async def upload_part(self, bucket: str, key: str, upload_id: str, number: int,
                          chunks: AsyncIterator[bytes], checks: Checks) -> str:
        return await self.inner.upload_part(bucket, key, upload_id, number, chunks, checks)

    async def complete_multipart(self, bucket: str, key: str, upload_id: str,
                                 parts: builtins.list[tuple[int, str]],
                                 caller: Caller = NOBODY) -> ObjectInfo:
        return await self.inner.complete_multipart(bucket, key, upload_id, parts, caller)

    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        await self.inner.abort_multipart(bucket, key, upload_id)

    async def list_parts(self, bucket: str, key: str,
                         upload_id: str) -> builtins.list[PartInfo]:
        return await self.inner.list_parts(bucket, key, upload_id)

    async def purge_stale_uploads(self, older_than: float) -> int:
        return await self.inner.purge_stale_uploads(older_than)


class HooksDecorator(Hooks):
    """Forwards every core.hooks.Hooks event to `inner` (the index's hooks, or another
    feed). A feed that watches writes (signature state, scanning) overrides the events it
    acts on and calls the base's, so every event still reaches the index."""

    def __init__(self, inner: Hooks) -> None:
        self.inner = inner

    async def manifest_put(self, repo: str, digest: Digest, manifest: Manifest, size: int,
                           tag: str | None, config: bytes | None,
                           artifact: str | None = None) -> None:
        await self.inner.manifest_put(repo, digest, manifest, size, tag, config, artifact)

    async def manifest_deleted(self, repo: str, digest: Digest) -> None:
        await self.inner.manifest_deleted(repo, digest)

    async def tag_deleted(self, repo: str, tag: str) -> None:
        await self.inner.tag_deleted(repo, tag)

    async def blob_linked(self, repo: str, digest: Digest, size: int) -> None:
        await self.inner.blob_linked(repo, digest, size)

    async def blob_unlinked(self, repo: str, digest: Digest) -> None:
        await self.inner.blob_unlinked(repo, digest)

    def manifest_pulled(self, repo: str, digest: Digest) -> None:
        self.inner.manifest_pulled(repo, digest)

    def blob_pulled(self, repo: str, digest: Digest) -> None:
        self.inner.blob_pulled(repo, digest)
