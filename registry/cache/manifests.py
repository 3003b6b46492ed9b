"""The node cache's manifests and tags: stored on first pull, tags revalidated after a TTL.

A manifest by digest is immutable: served locally once stored, else fetched from
the upstream, its digest verified, and stored as the manifest service stores a
push (`Manifests.mirror`), except that its blobs are not required: they are
fetched lazily, when pulled. A manifest by tag is served from the local tag while
it is younger than `tag_ttl` (seconds since this process last checked it upstream),
else revalidated with a conditional GET (If-None-Match on the digest it points at
here). If the upstream is unreachable or failing, the last target known here is
served marked stale (`StoredManifest.stale`, rendered as a `Warning` header) and a
line is logged: stale-if-error. Concurrent revalidations of one tag, and fetches
of one digest, share one upstream request.

Tag lists are the upstream's, cached for `tag_ttl`; pushes, retags and deletes are
refused (405 UNSUPPORTED): the upstream is the truth.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sized
from contextvars import ContextVar
from typing import TypeVar, cast

from registry.arch.request import client_host
from registry.cache.plans import read_small
from registry.cache.stats import CacheStats
from registry.cache.upstream import Upstream, UpstreamManifest
from registry.core.decorators import ManifestsDecorator, TagsDecorator
from registry.core.errors import (
    BlobUnknown,
    Denied,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    Unsupported,
    UpstreamUnavailable,
)
from registry.core.grammar import Digest, is_digest_like, is_valid_tag
from registry.core.manifest_format import Manifest
from registry.core.manifests import CONFIG_READ_MAX
from registry.core.offload import valid_sorted
from registry.core.protocols import Blobs, Manifests, Tags, View
from registry.core.types import StoredManifest

log = logging.getLogger("registry.cache")

T = TypeVar("T")
# Tags whose last check is remembered; the oldest are forgotten (and so rechecked).
MAX_CHECKED = 100_000
# After an upstream failure, a tag is served stale without asking again for this long
# (at most its TTL): a dead upstream must not cost every request a connect timeout.
STALE_RETRY_SECONDS = 5.0
MAX_VIEWS = 4096

# False while manifests are read to choose among them (hostaware.py): a child the
# host-aware cache only looks at must not bring its layers; the chosen one's come.
# Likewise while a client's own host is resolved (`Registry-Host`: arch.request).
_prefetching: ContextVar[bool] = ContextVar("prefetching", default=True)


@contextlib.contextmanager
def without_prefetch() -> Iterator[None]:
    """Manifests fetched inside (and by the tasks started inside) prefetch nothing."""
    token = _prefetching.set(False)
    try:
        yield
    finally:
        _prefetching.reset(token)


def read_only(upstream: Upstream) -> Unsupported:
    return Unsupported(f"this registry is a read-only cache of {upstream.base}: "
                       "push and delete there", {"upstream": upstream.base})


class Flights:
    """One running coroutine per key: later callers await the same result."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task] = {}

    async def run(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(factory())
            self._running[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        # Shielded: one caller going away must not cancel what the others wait for.
        return await asyncio.shield(task)

    def _done(self, key: Hashable, task: asyncio.Task) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: callers that went away leave no warning


class CachingManifests(ManifestsDecorator):
    """`Manifests` of a node cache (see the module docstring)."""

    def __init__(self, inner: Manifests, tags: Tags, upstream: Upstream, tag_ttl: float,
                 clock: Callable[[], float] = time.monotonic,
                 stats: CacheStats | None = None,
                 prefetch: Callable[[str, list[tuple[Digest, int]]], None] | None = None,
                 blobs: Blobs | None = None) -> None:
        super().__init__(inner)
        self.blobs = blobs  # the cache's blob path, for configs not held yet
        self.stats = stats or CacheStats()
        self.prefetch = prefetch
        self.tags = tags  # the local tags (the inner manifest service's)
        self.upstream = upstream
        self.tag_ttl = tag_ttl
        self.clock = clock
        self._checked: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._failing: dict[tuple[str, str], float] = {}  # (repo, tag) -> retry after
        self._flights = Flights()

    async def get(self, repo: str, reference: str, with_body: bool = True) -> StoredManifest:
        if is_digest_like(reference):
            Digest.parse(reference)  # a malformed digest is the client's 400, not a fetch
            try:
                return await self.inner.get(repo, reference, with_body)  # revision cached
            except (ManifestUnknown, BlobUnknown):
                pass  # not here, or its bytes were evicted: fetch it
            direct = await self._flights.run(
                (repo, reference), lambda: self._fetch(repo, reference, None))
            return direct or await self.inner.get(repo, reference, with_body)
        if not is_valid_tag(reference):
            raise ManifestUnknown(detail={"reference": reference[:128]})
        stale = False
        direct = None
        key = (repo, reference)
        checked = self._checked.get(key)
        now = self.clock()
        if self._failing.get(key, now) > now:
            stale = True  # the upstream failed a moment ago: do not wait for it again
        elif checked is None or now - checked >= self.tag_ttl:
            stale, direct = await self._flights.run(
                key, lambda: self._revalidate(repo, reference))
        if direct is not None:
            return direct
        try:
            stored = await self.inner.get(repo, reference, with_body)
        except BlobUnknown:
            # The tag is here but its manifest's bytes were evicted.
            digest = await self.tags.resolve(repo, reference)
            await self._flights.run((repo, str(digest)),
                                    lambda: self._fetch(repo, str(digest), None))
            stored = await self.inner.get(repo, reference, with_body)
        if not stale:
            return stored
        self.stats.stale += 1
        return dataclasses.replace(stored, stale=True)

    async def _revalidate(self, repo: str, tag: str) -> tuple[bool, StoredManifest | None]:
        """Ask the upstream whether `tag` still points where it does here; store its new
        target if not. (stale, a manifest to serve that could not be stored)."""
        known: Digest | None = None
        try:
            known = await self.tags.resolve(repo, tag)
            if not await self.inner.exists(repo, known):
                known = None
        except ManifestUnknown:
            known = None
        try:
            direct = await self._fetch(repo, tag, known)
        except UpstreamUnavailable as exc:
            if known is None:
                raise
            log.warning("upstream %s unavailable (%s): serving %s:%s -> %s stale",
                        self.upstream.base, exc.detail, repo, tag, known)
            if len(self._failing) >= MAX_CHECKED:
                self._failing.clear()
            self._failing[(repo, tag)] = self.clock() + min(self.tag_ttl, STALE_RETRY_SECONDS)
            return True, None
        self._failing.pop((repo, tag), None)
        if direct is not None:
            return False, direct  # not stored here: nothing to serve from next time
        self._checked[(repo, tag)] = self.clock()
        self._checked.move_to_end((repo, tag))
        while len(self._checked) > MAX_CHECKED:
            self._checked.popitem(last=False)
        return False, direct

    async def _fetch(self, repo: str, reference: str,
                     known: Digest | None) -> StoredManifest | None:
        """Fetch `reference` upstream (conditionally on `known`) and store it here; a
        manifest to serve as it is when it cannot be stored (a format we do not keep)."""
        got = await self.upstream.manifest(repo, reference, known)
        if got is None:
            return None  # 304: still `known`
        tag = None if is_digest_like(reference) else reference
        return await self._store(repo, got, tag)

    async def _store(self, repo: str, got: UpstreamManifest,
                     tag: str | None) -> StoredManifest | None:
        try:
            manifest = await self.inner.mirror(repo, got.digest, got.data, got.media_type, tag)
            if self.prefetch is not None and manifest.blobs and _prefetching.get() \
                    and client_host.get() is None:
                # Whoever pulls an image manifest pulls its layers next: start them all
                # now, so a client that pulls them in turn finds the later ones ready.
                self.prefetch(repo, [(d.digest, d.size) for d in manifest.blobs])
        except ManifestInvalid as exc:
            log.warning("not caching %s@%s from %s: %s", repo, got.digest, self.upstream.base,
                        exc.message)
            return StoredManifest(got.digest, got.media_type or "application/octet-stream",
                                  len(got.data), got.data)
        return None

    async def read_config(self, manifest: Manifest, repo: str | None = None) -> bytes | None:
        """The config as core reads it when held here, else (with `repo`) fetched through
        the cache's blob path and kept, as a client's GET of it would be."""
        held = await self.inner.read_config(manifest, repo)
        config = manifest.config
        if held is not None or repo is None or self.blobs is None or config is None \
                or config.size > CONFIG_READ_MAX:
            return held
        try:
            return await read_small(self.blobs, repo, config.digest, CONFIG_READ_MAX)
        except (BlobUnknown, NameUnknown, Denied):
            return None  # the upstream does not serve it here: described without it

    # -- passed through or refused -------------------------------------------

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]:
        raise read_only(self.upstream)

    async def delete(self, repo: str, reference: str) -> None:
        raise read_only(self.upstream)


class CachingTags(TagsDecorator):
    """`Tags` of a node cache: lists are the upstream's (cached for `ttl` seconds),
    lookups local (the manifest decorator keeps them current), writes refused."""

    def __init__(self, inner: Tags, upstream: Upstream, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        self.upstream = upstream
        self.ttl = ttl
        self.clock = clock
        self._lists: dict[str, tuple[float, list[str]]] = {}
        self._views: OrderedDict[tuple[str, Hashable], tuple[float, Sized]] = OrderedDict()
        self._flights = Flights()

    async def set(self, repo: str, tag: str, digest: Digest) -> None:
        raise read_only(self.upstream)

    async def delete(self, repo: str, tag: str) -> None:
        raise read_only(self.upstream)

    async def _listed(self, repo: str) -> tuple[float, list[str]]:
        entry = self._lists.get(repo)
        if entry is not None and self.clock() - entry[0] < self.ttl:
            return entry
        return await self._flights.run(repo, lambda: self._read(repo))

    async def _read(self, repo: str) -> tuple[float, list[str]]:
        tags = await valid_sorted(list(set(await self.upstream.tags(repo))), is_valid_tag)
        entry = (self.clock(), tags)
        if len(self._lists) >= MAX_VIEWS:
            self._lists.clear()  # crude, and enough: lists come back within a TTL
        self._lists[repo] = entry
        return entry

    async def list(self, repo: str) -> builtins.list[str]:
        return (await self._listed(repo))[1]

    async def view(self, repo: str, key: Hashable,
                   build: Callable[[builtins.list[str]], Awaitable[View]]) -> View:
        stamp, tags = await self._listed(repo)
        cached = self._views.get((repo, key))
        if cached is not None and cached[0] == stamp:
            # A key names one builder (the Protocol's contract): what it holds is a View.
            return cast(View, cached[1])
        view = await build(tags)
        self._views[(repo, key)] = (stamp, view)
        while len(self._views) > MAX_VIEWS:
            self._views.popitem(last=False)
        return view
