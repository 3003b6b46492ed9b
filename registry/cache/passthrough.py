"""The node cache's referrers (the upstream's, or the local ones when it is down)
and uploads (refused: a node cache is read-only, the upstream is the truth)."""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator
from typing import Any

from registry.cache.manifests import read_only
from registry.cache.upstream import Upstream
from registry.core.access import Caller
from registry.core.decorators import ReferrersDecorator, UploadsDecorator
from registry.core.errors import UpstreamUnavailable
from registry.core.grammar import Digest
from registry.core.protocols import Referrers, Uploads
from registry.core.types import UploadStatus

log = logging.getLogger("registry.cache")


class UpstreamReferrers(ReferrersDecorator):
    """`Referrers` answered by the upstream; the ones stored here if it is unavailable."""

    def __init__(self, inner: Referrers, upstream: Upstream) -> None:
        super().__init__(inner)
        self.upstream = upstream

    async def list(self, repo: str, subject: Digest,
                   artifact_type: str | None = None) -> builtins.list[dict[str, Any]]:
        try:
            found = await self.upstream.referrers(repo, subject, artifact_type)
        except UpstreamUnavailable as exc:
            log.warning("upstream %s unavailable (%s): referrers of %s from this cache",
                        self.upstream.base, exc.detail, subject)
            return await self.inner.list(repo, subject, artifact_type)
        if artifact_type:  # an upstream that does not filter
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found


class ReadOnlyUploads(UploadsDecorator):
    """`Uploads` of a node cache: every push is refused with 405 UNSUPPORTED."""

    def __init__(self, inner: Uploads, upstream: Upstream) -> None:
        super().__init__(inner)
        self.upstream = upstream

    async def start(self, repo: str, owner: str | None = None) -> UploadStatus:
        raise read_only(self.upstream)

    async def status(self, repo: str, upload_id: str,
                     owner: str | None = None) -> UploadStatus:
        raise read_only(self.upstream)

    async def append(self, repo: str, upload_id: str, chunks: AsyncIterator[bytes],
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> UploadStatus:
        raise read_only(self.upstream)

    async def finish(self, repo: str, upload_id: str, digest: Digest,
                     chunks: AsyncIterator[bytes] | None = None,
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> int:
        raise read_only(self.upstream)

    async def cancel(self, repo: str, upload_id: str, owner: str | None = None) -> None:
        raise read_only(self.upstream)

    async def upload_whole(self, repo: str, digest: Digest, chunks: AsyncIterator[bytes],
                           content_length: int | None) -> int:
        raise read_only(self.upstream)

    async def mount(self, repo: str, digest: Digest, source: str | None,
                    caller: Caller) -> bool:
        raise read_only(self.upstream)
