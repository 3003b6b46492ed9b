"""The core services as Protocols: the seams decorators wrap.

Handlers and other services depend on these, never on the classes behind them,
so the node cache, the Spack bridges, a quota or a policy guard can wrap a service
(`factory.build_registry(..., decorators=[...])`) without any handler knowing, as
CNCF distribution's `proxyblobstore` wraps its blob store. A decorator subclasses
the base of its Protocol in core/decorators.py, which forwards every method to the
wrapped service, and overrides only what it changes. The value types the methods
speak are in core/types.py, below this module.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sized
from typing import Any, Protocol, TypeVar

from registry.core.access import NOBODY, Caller
from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest
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

# What a tag view is built into (a rendered page): anything with a length.
View = TypeVar("View", bound=Sized)

class Blobs(Protocol):
    """Content-addressed bytes, linked into repositories, and how to serve them.
    The only way into `blobs/` and out of it: `commit` publishes a verified file,
    `remove` takes one out (and drops what caches said of it)."""

    async def size(self, digest: Digest) -> int | None: ...

    async def seen(self, digest: Digest) -> None: ...

    async def linked(self, repo: str, digest: Digest) -> bool: ...

    async def serve(self, repo: str, digest: Digest, range_header: str | None = None,
                    with_body: bool = True) -> BlobPlan: ...

    async def link(self, repo: str, digest: Digest, size: int) -> None: ...

    async def unlink(self, repo: str, digest: Digest) -> None: ...

    async def put_small(self, data: bytes, digest: Digest) -> None: ...

    async def commit(self, digest: Digest, staged: str, mark: bool = True) -> bool: ...

    async def remove(self, digest: Digest, to: str | None = None) -> bool: ...

    def stored(self) -> AsyncIterator[StoredBlob]: ...

    async def read(self, digest: Digest, max_bytes: int | None = None) -> bytes: ...

    def reader(self, digest: Digest, offset: int = 0,
               length: int | None = None) -> AsyncIterator[bytes]: ...


class Uploads(Protocol):
    """Upload sessions and cross-repository mounts.

    A session opened with an `owner` (who asked, as the access step names them)
    belongs to it: a call on the session with another owner finds no such upload.
    Without one (auth off) anyone holding the id may use the session."""

    async def start(self, repo: str, owner: str | None = None) -> UploadStatus: ...

    async def status(self, repo: str, upload_id: str,
                     owner: str | None = None) -> UploadStatus: ...

    async def append(self, repo: str, upload_id: str, chunks: AsyncIterator[bytes],
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> UploadStatus: ...

    async def finish(self, repo: str, upload_id: str, digest: Digest,
                     chunks: AsyncIterator[bytes] | None = None,
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> int: ...

    async def cancel(self, repo: str, upload_id: str, owner: str | None = None) -> None: ...

    async def upload_whole(self, repo: str, digest: Digest, chunks: AsyncIterator[bytes],
                           content_length: int | None) -> int: ...

    async def mount(self, repo: str, digest: Digest, source: str | None,
                    caller: Caller) -> bool: ...

    async def purge_stale(self, repositories: list[str], older_than: float) -> int: ...


class Manifests(Protocol):
    """Manifests: validated on put, served as pushed, deleted with what names them."""

    async def get(self, repo: str, reference: str,
                  with_body: bool = True) -> StoredManifest: ...

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]: ...

    async def mirror(self, repo: str, digest: Digest, data: bytes,
                     media_type: str | None, tag: str | None = None) -> Manifest: ...

    async def delete(self, repo: str, reference: str) -> None: ...

    async def delete_untagged(self, repo: str, digest: Digest,
                              named: Callable[[], Awaitable[bool]]) -> bool: ...

    async def exists(self, repo: str, digest: Digest) -> bool: ...

    async def read_bytes(self, digest: Digest) -> bytes: ...

    async def read_config(self, manifest: Manifest, repo: str | None = None) -> bytes | None:
        """The manifest's config blob if small, else None. `repo` is the repository the
        manifest is read in: a service that does not hold the config yet may fetch it
        from there (a node cache, from its upstream); core reads only what it holds."""
        ...

    # What the injected artifact check records of a stored manifest's document
    # (core/artifact_checks.py), for the catch-up; None when nothing is checked.
    async def read_artifact(self, manifest: Manifest) -> str | None: ...


class Tags(Protocol):
    """Mutable names for manifests."""

    async def resolve(self, repo: str, reference: str) -> Digest: ...

    async def set(self, repo: str, tag: str, digest: Digest) -> None: ...

    async def delete(self, repo: str, tag: str) -> None: ...

    async def list(self, repo: str) -> builtins.list[str]: ...

    async def view(self, repo: str, key: Hashable,
                   build: Callable[[builtins.list[str]], Awaitable[View]]) -> View:
        """`build(tags)` over the repository's sorted tags, cached under (repo, key)
        until the tags change: a key names one builder, so what it holds is a View."""
        ...

    async def targets(self, repo: str) -> dict[str, Digest]: ...

    async def pointing_at(self, repo: str, digest: Digest) -> builtins.list[str]: ...


class Referrers(Protocol):
    """Manifests whose subject is a given digest."""

    async def list(self, repo: str, subject: Digest,
                   artifact_type: str | None = None) -> builtins.list[dict[str, Any]]: ...

    def index(self, descriptors: builtins.list[dict[str, Any]]) -> dict[str, Any]: ...


class Catalog(Protocol):
    """The repositories that exist."""

    async def exists(self, repo: str) -> bool: ...

    async def repositories(self) -> list[str]: ...

    async def layers(self, repo: str) -> list[Digest]: ...

    async def revisions(self, repo: str) -> list[Digest]: ...


class Objects(Protocol):
    """The S3-compatible API's buckets and objects (core.object_service, over
    core.objects, core.object_listing and core.multipart): entries in the objects
    area, content-addressed keys in the blob store, multipart uploads."""

    async def bucket_exists(self, bucket: str) -> bool: ...

    async def create_bucket(self, bucket: str) -> bool: ...

    async def buckets(self) -> list[BucketInfo]: ...

    async def head(self, bucket: str, key: str) -> ObjectInfo: ...

    async def serve(self, bucket: str, key: str, range_header: str | None = None,
                    with_body: bool = True, if_match: str | None = None,
                    if_none_match: str | None = None) -> ObjectPlan: ...

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes], checks: Checks,
                  content_type: str | None = None, caller: Caller = NOBODY) -> ObjectInfo:
        """PutObject; `caller` is who writes (what a decorator linking blobs or making
        tags on its behalf may do: the Spack bridge)."""

    async def delete(self, bucket: str, key: str) -> bool: ...

    async def put_blob_entry(self, bucket: str, key: str, digest: Digest, size: int,
                             content_type: str | None = None) -> ObjectInfo: ...

    async def list(self, bucket: str, prefix: str = "", delimiter: str = "",
                   max_keys: int = 1000, start_after: str = "",
                   token: str | None = None) -> ListPage: ...

    async def create_multipart(self, bucket: str, key: str,
                               content_type: str | None) -> str: ...

    async def upload_part(self, bucket: str, key: str, upload_id: str, number: int,
                          chunks: AsyncIterator[bytes], checks: Checks) -> str: ...

    async def complete_multipart(self, bucket: str, key: str, upload_id: str,
                                 parts: builtins.list[tuple[int, str]],
                                 caller: Caller = NOBODY) -> ObjectInfo: ...

    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None: ...

    async def list_parts(self, bucket: str, key: str,
                         upload_id: str) -> builtins.list[PartInfo]: ...

    async def purge_stale_uploads(self, older_than: float) -> int: ...
