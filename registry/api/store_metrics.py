"""Storage and scrub series for `/metrics`.

Storage: the driver wrapper (storage/base.py CheckedDriver) counts calls, misses,
errors and bytes per operation with plain integers, about a microsecond a call;
this module moves what they grew by into prometheus-client counters when
`Metrics.sync` runs (every two seconds and before each exposition), so that with
several workers the counters of every process add up (multiprocess mode) without
a shared write on every call.

Scrub: `registry scrub` runs as its own process and leaves its figures in the
store (core/scrub.py); any worker serves them as gauges, read at most every 5 s.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from registry.api.request_metrics import multiprocess

SCRUB_TTL_S = 5.0
# The driver counters (storage.base.OpStats) followed, each by a counter of its own.
_FIELDS = ("calls", "errors", "not_found", "bytes_read", "bytes_written")


class StorageMetrics:
    """Counters of the store's operations, per driver and operation."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats
        self._last: dict[tuple[str, str, str], int] = {}
        labels = ["driver", "operation"]
        self._counters = {
            "calls": Counter("registry_storage_operations", "Store operations started",
                             labels, registry=None),
            "errors": Counter("registry_storage_errors",
                              "Store operations that failed (a missing path is not one)",
                              labels, registry=None),
            "not_found": Counter("registry_storage_not_found",
                                 "Store operations on a path that holds nothing", labels,
                                 registry=None),
            "bytes_read": Counter("registry_storage_read_bytes", "Bytes read from the store",
                                  labels, registry=None),
            "bytes_written": Counter("registry_storage_written_bytes",
                                     "Bytes written to the store", labels, registry=None),
        }

    def register(self, registry: CollectorRegistry) -> None:
        if not multiprocess():  # there, the multiprocess collector reads them all
            for counter in self._counters.values():
                registry.register(counter)

    def sync(self) -> None:
        """Add what the driver's counters grew by since the last sync."""
        snapshot = self._stats()
        driver = snapshot["driver"]
        for op, stats in snapshot["ops"].items():
            for field in _FIELDS:
                value = stats[field]
                key = (driver, op, field)
                grown = value - self._last.get(key, 0)
                if grown > 0:
                    self._counters[field].labels(driver, op).inc(grown)
                    self._last[key] = value


SCRUB_GAUGES = {
    "finished": ("registry_scrub_last_run_timestamp_seconds", "When the last scrub finished"),
    "blobs": ("registry_scrub_checked_blobs", "Blobs the last scrub re-hashed"),
    "bytes": ("registry_scrub_checked_bytes", "Bytes the last scrub re-hashed"),
    "corrupt": ("registry_scrub_corrupt_blobs",
                "Blobs the last scrub found not to hash to their name"),
    "quarantined": ("registry_scrub_quarantined_blobs", "Blobs the last scrub quarantined"),
    "unreadable": ("registry_scrub_unreadable_blobs", "Blobs the last scrub could not read"),
    "missing": ("registry_scrub_missing_links",
                "Repository links the last scrub found to name no stored blob"),
}


class ScrubGauges:
    """The last scrub's figures, as gauges (nothing until a scrub has run)."""

    def __init__(self, read: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
        self._read = read
        self._figures: dict[str, Any] | None = None
        self._at = -SCRUB_TTL_S

    async def refresh(self) -> None:
        if time.monotonic() - self._at < SCRUB_TTL_S:
            return
        self._at = time.monotonic()
        try:
            self._figures = await self._read()
        except Exception:  # the store is down: the page still renders, without these
            self._figures = None

    def collect(self) -> Iterator[Metric]:
        figures = self._figures
        if not figures:
            return
        for field, (name, doc) in SCRUB_GAUGES.items():
            value = figures.get(field)
            if isinstance(value, int | float):
                yield GaugeMetricFamily(name, doc, value=value)
