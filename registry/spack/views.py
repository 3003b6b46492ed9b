"""What a classic mirror view (`/spack/<cache>/<path>`, layouts v3 and v2) answers.

One Protocol for every server that has such views: the build caches this
registry keeps (spack.classic.SpackViews) and a node cache's view of its
upstream's (cache.spack_proxy.SpackProxy). The handler (api.spack_views) asks
`answer` and renders what comes back, never knowing which one it has: a small
document, a blob of the cache's repository, or an S3 object. The node cache
imports this module and spack.layout only (an exception in the import contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.core.errors import NameInvalid, NotFound
from registry.core.grammar import Digest
from registry.spack.layout import valid_cache


@dataclass(frozen=True, slots=True)
class Document:
    """A small document made or kept by the server (an index manifest, a spec
    manifest, a key index), sent whole with its sha256 as a strong ETag."""

    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The S3 object at `key` of `bucket`: what spack itself pushed, unchanged."""

    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Blob `digest` of repository `repository`; when the blob store lacks it,
    `fallback` (the object spack pushed at the blob's key), if any."""

    repository: str
    digest: Digest
    fallback: ObjectRef | None = None


Answer = Document | BlobRef | ObjectRef


class ClassicViews(Protocol):
    """The classic mirror views of build caches, by cache and path below its root."""

    async def answer(self, cache: str, path: str) -> Answer:
        """What to send for `path` (`v3/...`, `blobs/...`, `build_cache/...`) of
        `cache`; raises core.errors.NotFound when there is nothing, NameInvalid
        when `cache` cannot be a cache (see `check_cache`)."""
        ...


def check_cache(cache: str) -> str:
    """`cache` when it can be a build cache (an OCI repository name); else
    NameInvalid, before any store is asked (the view route admits more)."""
    if not valid_cache(cache):
        raise NameInvalid(detail={"name": cache[:256]})
    return cache


def missing(what: str) -> NotFound:
    """The error of a path a cache does not have."""
    return NotFound(f"{what} not found in this build cache")
