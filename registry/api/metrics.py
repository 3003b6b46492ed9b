"""`GET /metrics`: Prometheus text exposition (prometheus-client).

The process's own collectors (memory, CPU, open files); requests by family,
method and status, latencies, bytes, requests in flight, over every worker
(api/request_metrics.py); and, on a node cache, its counters summed over every
worker and restart (registry/cache/stats.py, handed over by the wiring as a mapping
of counter names, so that no handler imports the cache; this process's own numbers live,
the others' as they last wrote them, at most five seconds old).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from registry.api.common import Context
from registry.api.request_metrics import RequestMetrics
from registry.api.store_metrics import ScrubGauges, StorageMetrics

SYNC_S = 2.0
CACHE_COUNTERS = {
    "hits": ("registry_cache_hits", "Blob requests answered from what the node cache holds"),
    "misses": ("registry_cache_misses", "Blob requests that started a download"),
    "coalesced": ("registry_cache_coalesced",
                  "Blob requests that joined a download in flight (any worker)"),
    "bytes_upstream": ("registry_cache_upstream_bytes",
                       "Blob bytes received from the upstream or a peer"),
    "bytes_served": ("registry_cache_served_bytes", "Blob bytes sent to clients"),
    "stale": ("registry_cache_stale_tags", "Tags answered stale because the upstream failed"),
    "evictions": ("registry_cache_evictions", "Blobs evicted under max_bytes"),
    "bytes_evicted": ("registry_cache_evicted_bytes", "Bytes evicted under max_bytes"),
    "fetch_errors": ("registry_cache_fetch_errors", "Downloads that failed"),
    "prefetched": ("registry_cache_prefetched",
                   "Downloads started for the layers of a manifest just fetched"),
}


class _Snapshot:
    """A collector of values taken just before the exposition is rendered."""

    def __init__(self) -> None:
        self.stats: Mapping[str, int] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.stats is None:
            return
        for field, (name, doc) in CACHE_COUNTERS.items():
            yield CounterMetricFamily(name, doc, value=self.stats.get(field, 0))


class Metrics:
    """What `/metrics` renders for one process."""

    def __init__(self,
                 cache_counters: Callable[[], Awaitable[Mapping[str, int]]] | None = None,
                 held_bytes: Callable[[], int] | None = None,
                 index_queue: Callable[[], int] | None = None,
                 storage_stats: Callable[[], dict[str, Any]] | None = None,
                 last_scrub: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
                 ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.requests = RequestMetrics()
        self.requests.register(self.registry)
        if index_queue is not None:
            self.registry.register(_Gauge(
                "registry_index_queue_depth",
                "Index writes this process has queued and not yet applied", index_queue))
        # Store operations per driver, and the last scrub (api/store_metrics.py).
        self.storage = StorageMetrics(storage_stats) if storage_stats is not None else None
        if self.storage is not None:
            self.storage.register(self.registry)
        self._scrub = ScrubGauges(last_scrub) if last_scrub is not None else None
        if self._scrub is not None:
            self.registry.register(self._scrub)
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)
        self._cache_counters = cache_counters
        if held_bytes is not None:
            gauge = _Gauge("registry_cache_held_bytes",
                           "Bytes of blobs this node-cache process counts as held", held_bytes)
            self.registry.register(gauge)

    def sync(self) -> None:
        """Copy what the hot paths keep in plain integers into the shared series."""
        self.requests.sync()
        if self.storage is not None:
            self.storage.sync()

    async def run(self) -> None:
        """sync() every SYNC_S seconds, for the life of the process (with several
        workers, a scrape answered by one worker sees the others' figures as of
        their last sync)."""
        while True:
            await asyncio.sleep(SYNC_S)
            self.sync()

    async def render(self) -> bytes:
        self.sync()
        if self._scrub is not None:
            await self._scrub.refresh()
        if self._cache_counters is not None:
            self._snapshot.stats = await self._cache_counters()
        # The process collector reads /proc: off the event loop.
        return await asyncio.to_thread(generate_latest, self.registry)


class _Gauge:
    def __init__(self, name: str, doc: str, value: Callable[[], int]) -> None:
        self.name, self.doc, self.value = name, doc, value

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.doc, value=self.value())


async def metrics_page(request: web.BaseRequest, route: dict[str, str],
                       ctx: Context) -> web.StreamResponse:
    metrics = ctx.metrics or Metrics()
    return web.Response(body=await metrics.render(),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
