"""A host-aware node cache: a tag that names an index is answered with its best child.

For clients that cannot send `Registry-Host` (plain `podman pull`, apptainer), with
`[cache] host_aware = true` the cache answers a manifest GET or HEAD by tag whose
target is an index with the child that fits the cache's host best (its own media type
and digest), as `arch.resolver.Resolver` ranks them (docs/architecture-aware.md,
"The node cache's host"). Everything else passes through unchanged:

* a GET by digest: content addressing, the client named the bytes it wants;
* a request whose client named its own host (`arch.request.client_host`): it gets
  the index and the `Registry-Host` path resolves it for the client's host;
* an index none of whose children fits the host: served as it is, so the client
  chooses by its platform as it would without a host-aware cache; a cache must not
  fail a pull its upstream would serve (logged once per index);
* an index whose children cannot be read for an upstream failure: that error (503),
  not a guess; nothing is remembered, the next pull tries again.

Children are read through the cache's own manifest path (so they are fetched once and
kept) without prefetching their layers (only the chosen child's are wanted), and their
configs through the cache's blob path (`CachingManifests.read_config`). The choice for
an index is remembered per (repository, index digest): the index and its children are
content-addressed and the host is fixed for the process, but image-compatibility
artifacts may be attached to a build upstream later, so the choice is made again after
`tag_ttl` (the children are here by then; only their referrers are asked again).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from registry.arch.host import Host, host_query
from registry.arch.request import client_host
from registry.arch.resolver import Compat, Resolver
from registry.cache.manifests import CachingManifests, Flights, without_prefetch
from registry.core.decorators import ManifestsDecorator
from registry.core.errors import (
    BlobUnknown,
    ManifestInvalid,
    RegistryError,
    TooManyRequests,
    UpstreamUnavailable,
)
from registry.core.grammar import Digest, is_digest_like
from registry.core.manifest_format import INDEX_TYPES, Manifest, parse_manifest
from registry.core.offload import off_loop_if
from registry.core.service import Registry
from registry.core.types import StoredManifest

log = logging.getLogger("registry.cache")

CHOICES_KEPT = 4096  # (repository, index digest) -> chosen child, least recent forgotten
PARSE_INLINE_MAX = 64 << 10  # larger manifests are parsed off the event loop


class HostAwareManifests(ManifestsDecorator):
    """`Manifests` of a host-aware node cache (see the module docstring). `host()` is
    the cache's host, None until it is known (the cache describes it at start)."""

    def __init__(self, inner: CachingManifests, registry: Registry,
                 host: Callable[[], Host | None], compat: Compat | None = None,
                 ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        self.caching = inner
        # A choice is content-addressed but for the artifacts attached to the builds
        # upstream later: with those in play it is made again after `ttl` seconds.
        self.ttl = ttl if compat is not None else math.inf
        self.clock = clock
        # Children read through the caching manifests (fetched once, kept; their configs
        # through the cache's blob path: CachingManifests.read_config).
        # compat: the builds' image-compatibility artifacts, from the upstream (compat.py).
        self.resolver = Resolver(dataclasses.replace(registry, manifests=inner), compat)
        self.host = host
        # (repository, index digest) -> (when chosen, the child or None: nothing fits)
        self._chosen: OrderedDict[tuple[str, str], tuple[float, str | None]] = OrderedDict()
        self._flights = Flights()

    async def get(self, repo: str, reference: str, with_body: bool = True) -> StoredManifest:
        host = self.host()
        if host is None or is_digest_like(reference) or client_host.get() is not None:
            return await self.inner.get(repo, reference, with_body)
        stored = await self.inner.get(repo, reference, with_body)
        if stored.media_type not in INDEX_TYPES:
            return stored
        key = (repo, str(stored.digest))
        known = self._chosen.get(key)
        if known is not None and self.clock() - known[0] < self.ttl:
            self._chosen.move_to_end(key)
            chosen = known[1]
        else:
            try:
                chosen = await self._flights.run(key, lambda: self._choose(repo, stored, host))
            except (UpstreamUnavailable, TooManyRequests):
                if known is None:
                    raise  # the children cannot be read now: say so, guess nothing
                chosen = known[1]  # what was chosen before, until the upstream is back
            except RegistryError as exc:  # e.g. a child the upstream refuses us
                log.warning("host-aware: cannot resolve %s@%s (%s): serving the index",
                            repo, stored.digest, exc.message)
                return stored
        if chosen is None:
            return stored
        child = await self.inner.get(repo, chosen, with_body)
        return dataclasses.replace(child, stale=True) if stored.stale else child

    async def _choose(self, repo: str, index: StoredManifest, host: Host) -> str | None:
        with without_prefetch():
            resolution = await self.resolver.resolve_stored(repo, index, host)
        chosen = resolution.chosen
        key = (repo, str(index.digest))
        before = self._chosen.get(key)
        if before is not None and before[1] == (chosen.digest if chosen else None):
            pass  # made again, the same: said already
        elif chosen is None:
            log.info("host-aware: no child of %s@%s fits %s: serving the index (%s)",
                     repo, index.digest, host_query(host),
                     "; ".join(f"{c.digest[:19]}: {c.reason}"
                               for c in resolution.candidates[:8]))
        else:
            log.info("host-aware: %s@%s -> %s for %s (%s)", repo, index.digest,
                     chosen.digest, host_query(host), chosen.reason)
            await self._prefetch(repo, chosen.digest, chosen.media_type)
        self._chosen[key] = (self.clock(), chosen.digest if chosen else None)
        self._chosen.move_to_end(key)
        while len(self._chosen) > CHOICES_KEPT:
            self._chosen.popitem(last=False)
        return chosen.digest if chosen else None

    async def _prefetch(self, repo: str, digest: str, media_type: str) -> None:
        """The chosen child's layers, as any manifest fetched from the upstream gets."""
        prefetch = self.caching.prefetch
        if prefetch is None:
            return
        manifest = await _parsed(self.caching, Digest.parse(digest), media_type)
        if manifest is not None and manifest.blobs:
            prefetch(repo, [(d.digest, d.size) for d in manifest.blobs])


async def _parsed(manifests: CachingManifests, digest: Digest,
                  media_type: str) -> Manifest | None:
    try:
        data = await manifests.read_bytes(digest)
        return await off_loop_if(len(data) > PARSE_INLINE_MAX, parse_manifest, data,
                                 media_type)
    except (BlobUnknown, ManifestInvalid):
        return None  # evicted meanwhile, or not an image: its layers come when pulled
