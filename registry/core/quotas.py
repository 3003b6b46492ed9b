"""Quotas: bytes per namespace glob (`[limits] quotas = ["team/* 50GiB"]`).

A decorator over the upload service (the same Protocol, as the design has guards
wrap services): a blob upload into a repository that a quota's pattern matches is
refused with 413 DENIED, naming the quota, when the namespace's stored bytes plus
the upload would pass the limit. Declared lengths are refused before a byte is
written; streamed bodies as soon as they pass it (the chunk is then rolled back).
Usage is the namespace's unique bytes from the index (each digest once), read at
most every few seconds per quota, plus what this process stored since it read it
(the index learns of a push a moment later). Other workers' and replicas' pushes
count once the index has them, so a quota can be passed by at most what they
store in those seconds.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from registry.core.decorators import UploadsDecorator
from registry.core.errors import RegistryError
from registry.core.grammar import Digest
from registry.core.protocols import Uploads
from registry.core.service import Registry
from registry.core.types import UploadStatus
from registry.specs import parse_quota
from registry.units import human_size

USAGE_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class Quota:
    """At most `limit` bytes stored for the repositories matching `pattern`."""

    pattern: str
    limit: int

    @classmethod
    def parse(cls, text: str) -> Quota:
        return cls(*parse_quota(text))

    def covers(self, repo: str) -> bool:
        return fnmatch.fnmatchcase(repo, self.pattern)


class QuotaExceeded(RegistryError):
    code, status = "DENIED", 413


Measure = Callable[[str], Awaitable[int]]  # pattern -> unique bytes stored


class QuotaUploads(UploadsDecorator):
    """Uploads that stay within the quotas (every other call passes through)."""

    def __init__(self, inner: Uploads, quotas: list[Quota], measure: Measure) -> None:
        super().__init__(inner)
        self.quotas = quotas
        self.measure = measure
        self._usage: dict[str, tuple[float, int]] = {}

    async def _used(self, quota: Quota) -> int:
        now = time.monotonic()
        hit = self._usage.get(quota.pattern)
        if hit is None or now - hit[0] > USAGE_TTL_S:
            hit = (now, await self.measure(quota.pattern))
            self._usage[quota.pattern] = hit
        return hit[1]

    async def _room(self, repo: str) -> list[tuple[Quota, int]]:
        """(quota, bytes left) for every quota covering `repo`."""
        return [(q, q.limit - await self._used(q)) for q in self.quotas if q.covers(repo)]

    def _stored(self, repo: str, size: int) -> None:
        """Count a blob just stored at once: the index learns of it a moment later,
        and a burst of pushes must not slip through in between."""
        for quota in self.quotas:
            hit = self._usage.get(quota.pattern)
            if hit is not None and quota.covers(repo):
                self._usage[quota.pattern] = (hit[0], hit[1] + size)

    def _refuse(self, quota: Quota, left: int, asked: int) -> QuotaExceeded:
        return QuotaExceeded(
            f"quota {quota.pattern} of {human_size(quota.limit)} exceeded: "
            f"{human_size(quota.limit - left)} stored, {human_size(asked)} more asked",
            {"quota": quota.pattern, "limit": quota.limit, "used": quota.limit - left,
             "asked": asked})

    async def _guard(self, repo: str, chunks: AsyncIterator[bytes] | None,
                     length: int | None) -> AsyncIterator[bytes] | None:
        room = await self._room(repo)
        if not room:
            return chunks
        for quota, left in room:
            if left <= 0 or (length is not None and length > left):
                raise self._refuse(quota, left, length or 0)
        if chunks is None:
            return None
        return self._counted(chunks, room)

    async def _counted(self, chunks: AsyncIterator[bytes],
                       room: list[tuple[Quota, int]]) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in chunks:
            seen += len(chunk)
            for quota, left in room:
                if seen > left:
                    raise self._refuse(quota, left, seen)
            yield chunk

    async def upload_whole(self, repo: str, digest: Digest, chunks: AsyncIterator[bytes],
                           content_length: int | None) -> int:
        guarded = await self._guard(repo, chunks, content_length)
        assert guarded is not None
        size = await self.inner.upload_whole(repo, digest, guarded, content_length)
        self._stored(repo, size)
        return size

    async def append(self, repo: str, upload_id: str, chunks: AsyncIterator[bytes],
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> UploadStatus:
        guarded = await self._guard(repo, chunks, content_length)
        assert guarded is not None
        return await self.inner.append(repo, upload_id, guarded, content_range, content_length,
                                       owner)

    async def finish(self, repo: str, upload_id: str, digest: Digest,
                     chunks: AsyncIterator[bytes] | None = None,
                     content_range: tuple[int, int] | None = None,
                     content_length: int | None = None,
                     owner: str | None = None) -> int:
        guarded = await self._guard(repo, chunks, content_length)
        size = await self.inner.finish(repo, upload_id, digest, guarded, content_range,
                                       content_length, owner)
        self._stored(repo, size)
        return size


def quota_decorator(quotas: list[Quota], measure: Measure) -> Callable[[Registry], Registry]:
    """The factory decorator that puts the quotas around a registry's uploads."""

    def decorate(registry: Registry) -> Registry:
        return dataclasses.replace(registry, uploads=QuotaUploads(registry.uploads, quotas,
                                                                  measure))

    return decorate
