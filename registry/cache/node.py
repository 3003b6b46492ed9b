"""The node cache assembled: its upstream client, eviction table and decorators.

`NodeCache.decorate` is a decorator for `core.factory.build_registry`: it replaces
the blob, manifest, tag, referrer and upload services with wrappers of the same
Protocols, so no handler knows it serves a cache. Used as an async context
manager it owns what outlives a request: the upstream session, the fetches in
flight and the eviction table (loaded from the store at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from types import TracebackType

from registry.arch.detect import detect
from registry.arch.host import Host, host_query, parse_host
from registry.arch.resolver import Compat
from registry.cache.blobs import CachingBlobs
from registry.cache.compat import upstream_compat
from registry.cache.eviction import Lru
from registry.cache.hostaware import HostAwareManifests
from registry.cache.manifests import CachingManifests, CachingTags
from registry.cache.passthrough import ReadOnlyUploads, UpstreamReferrers
from registry.cache.peers import CONNECT_S, Peers
from registry.cache.spack_proxy import SpackProxy
from registry.cache.stats import FLUSH_S, CacheStats, StatsFiles
from registry.cache.upstream import Upstream
from registry.config import CacheConfig
from registry.core.hooks import Hooks
from registry.core.protocols import Manifests
from registry.core.scratch import ScratchSpace
from registry.core.service import Registry

log = logging.getLogger("registry.cache")


class NodeCache:
    """A pull-through cache of `[cache] upstream`, downloading into `scratch` (the
    local store's scratch space, which core hands it) and storing through the blob
    service of the registry it decorates."""

    def __init__(self, config: CacheConfig, scratch: ScratchSpace,
                 manifest_max_bytes: int = 4 << 20, fsync: bool = True,
                 hooks: Hooks | None = None) -> None:
        self.config = config
        self.hooks = hooks
        self.scratch = scratch
        self.fsync = fsync
        self.upstream = Upstream(config.upstream, config.username, config.password,
                                 config.ca_bundle, manifest_max_bytes)
        self.stats = CacheStats()
        self.stats_files = StatsFiles(config.dir)
        self._flusher: asyncio.Task | None = None
        self.lru = Lru(config.max_bytes, self.stats)
        self.peers = None
        if config.peers:
            self.peers = Peers(config.advertise, config.peers, lambda url: Upstream(
                url, ca_bundle=config.ca_bundle, manifest_max_bytes=manifest_max_bytes,
                connect_timeout=CONNECT_S))
        self.blobs: list[CachingBlobs] = []
        self.spack = SpackProxy(self.upstream, float(config.tag_ttl))
        # The host it resolves index tags for ([cache] host_aware), known once started.
        self.host: Host | None = None
        self.compat: Compat | None = None  # set by decorate

    def decorate(self, reg: Registry) -> Registry:
        self.lru.blobs = reg.blobs  # core's store: evictions go through its owner
        blobs = CachingBlobs(reg.blobs, self.scratch, self.upstream, self.lru, self.fsync,
                             self.hooks, self.peers, self.stats, reg.mounts)
        self.blobs.append(blobs)
        ttl = float(self.config.tag_ttl)
        caching = CachingManifests(reg.manifests, reg.tags, self.upstream, ttl,
                                   stats=self.stats,
                                   prefetch=blobs.prefetch if self.config.prefetch else None,
                                   blobs=blobs)
        referrers = UpstreamReferrers(reg.referrers, self.upstream)
        # The resolver's compatibility seam, for this cache's choices and the
        # Registry-Host path on it: the upstream knows a build's artifacts.
        self.compat = upstream_compat(referrers, caching, blobs)
        manifests: Manifests = caching
        if self.config.host_aware:  # tags of indexes answered for this node's host
            manifests = HostAwareManifests(caching, reg, lambda: self.host, self.compat, ttl)
        return dataclasses.replace(
            reg,
            blobs=blobs,
            manifests=manifests,
            tags=CachingTags(reg.tags, self.upstream, ttl),
            referrers=referrers,
            uploads=ReadOnlyUploads(reg.uploads, self.upstream),
        )

    async def __aenter__(self) -> NodeCache:
        if self.config.host_aware:
            self.host = await describe_host(self.config.host)
        await self.upstream.start()
        if self.peers is not None:
            await self.peers.start()
        await self.lru.load()
        await self.lru.make_room()  # the cap may have shrunk since the last run
        await asyncio.to_thread(self.stats_files.fold_dead)
        self._flusher = asyncio.create_task(self._flush_stats(), name="cache-stats")
        return self

    async def counters(self) -> CacheStats:
        """The cache's counters over every worker and restart: this process's live,
        the others' as their files last said."""
        def total() -> CacheStats:
            out, _ = self.stats_files.totals()
            own = self.stats_files.read_own()
            for f in dataclasses.fields(out):
                name = f.name
                setattr(out, name, getattr(out, name) - getattr(own, name)
                        + getattr(self.stats, name))
            return out

        return await asyncio.to_thread(total)

    async def counter_values(self) -> dict[str, int]:
        """`counters()` by name, as /metrics takes them (api/metrics.py)."""
        return (await self.counters()).to_json()

    async def _flush_stats(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await asyncio.to_thread(self.stats_files.write, self.stats)
            except OSError:  # counters are statistics: never stop the cache for them
                log.warning("could not write the cache's counters", exc_info=True)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.stats_files.write, self.stats)
        for blobs in self.blobs:
            await blobs.close()
        await self.upstream.close()
        if self.peers is not None:
            await self.peers.close()


async def describe_host(configured: str) -> Host:
    """The host a host-aware cache resolves for: `[cache] host` when set (checked by
    the config already), else this machine as detected; logged, since every pull of
    an index through the cache depends on it."""
    if configured:
        host = parse_host(configured)
        log.info("host-aware: index tags resolved for %s ([cache] host)", host_query(host))
        return host
    found = await asyncio.to_thread(detect)  # runs nvidia-smi
    log.info("host-aware: index tags resolved for %s (detected: %s)",
             host_query(found.host), "; ".join(found.notes))
    return found.host
