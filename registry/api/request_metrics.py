"""Request metrics for `/metrics`: counts by family, method and status, latency
histograms by kind of request, bytes in and out, requests in flight.

With several workers each process writes its numbers to memory-mapped files in a
directory of its own instance (prometheus-client's multiprocess mode, set up by
`registry serve` before it forks: `multiprocess_dir`), and `/metrics` in any
worker adds them all up. With one worker the numbers live in the process.
"""

from __future__ import annotations

import os
import shutil
import time
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

ENV = "PROMETHEUS_MULTIPROC_DIR"
# Handlers whose latency is worth its own series (the rest are "other").
KINDS = {"get_manifest": "manifest_get", "get_blob": "blob_get", "start_upload": "upload",
         "patch_upload": "upload", "put_upload": "upload", "put_manifest": "manifest_put"}
# Handlers that receive a blob's bytes: "uploads in progress".
UPLOADING = frozenset({"start_upload", "patch_upload", "put_upload", "put_object",
                       "upload_part"})
# Kinds whose time to the first byte of the answer (the headers) is worth a series:
# a blob GET's total time is mostly the client's download (a manifest is answered
# whole: its total time is its first byte).
FIRST_BYTE = frozenset({"blob_get"})
FIRST_BYTE_HANDLERS = frozenset(h for h, kind in KINDS.items() if kind in FIRST_BYTE)
# From a cached manifest (~0.2 ms) to a large blob or upload (minutes).
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
           30, 60, 300, float("inf"))


def multiprocess_dir(path: str) -> None:
    """Before the fork: every process started from here writes its metrics under
    `path` (emptied: counters start at zero with the instance)."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ[ENV] = path
    values.ValueClass = values.MultiProcessValue()


def multiprocess() -> bool:
    return bool(os.environ.get(ENV))


class RequestMetrics:
    """The series every request updates (children cached: labels() costs a lookup)."""

    def __init__(self) -> None:
        self.requests = Counter("registry_http_requests", "Requests answered",
                                ["family", "method", "status"], registry=None)
        self.duration = Histogram("registry_http_request_duration_seconds",
                                  "Time from the request to the end of its answer",
                                  ["kind"], buckets=BUCKETS, registry=None)
        self.sent = Counter("registry_http_sent_bytes", "Response bytes sent", ["family"],
                            registry=None)
        self.received = Counter("registry_http_received_bytes",
                                "Request body bytes declared (Content-Length)", ["family"],
                                registry=None)
        self.first_byte = Histogram("registry_http_first_byte_seconds",
                                    "Time from the request to its answer's headers",
                                    ["kind"], buckets=BUCKETS, registry=None)
        self.uploads = Gauge("registry_uploads_in_progress",
                             "Requests receiving blob bytes (OCI uploads and chunks, S3 "
                             "objects and parts)", registry=None, multiprocess_mode="livesum")
        self.in_flight = Gauge("registry_http_requests_in_flight", "Requests being answered",
                               registry=None, multiprocess_mode="livesum")
        # Garbage collection (core/gc.py reports; any worker may run one).
        self.gc_runs = Counter("registry_gc_runs", "Garbage collections finished",
                               ["dry_run"], registry=None)
        self.gc_freed = Counter("registry_gc_freed_bytes", "Bytes freed by garbage collection",
                                registry=None)
        self.gc_deleted = Counter("registry_gc_deleted_blobs",
                                  "Blobs deleted by garbage collection", registry=None)
        self.gc_last = Gauge("registry_gc_last_run_timestamp_seconds",
                             "When the last garbage collection finished", registry=None,
                             multiprocess_mode="max")
        self._children: dict[tuple, tuple] = {}
        # Requests being answered by this process: a plain integer on the hot path
        # (a gauge update is a locked write per request), copied into the gauge by
        # sync(), every 2 s and before each exposition.
        self.active = 0
        # With one process, requests answered are added up in plain numbers too and
        # moved into the series by sync(), which runs before each exposition, so a
        # scrape sees every request. With several workers each one's numbers go to
        # its file at once: a scrape by another worker reads them there.
        self._batched = not multiprocess()
        self._tallies: dict[tuple, _Tally] = {}

    def sync(self) -> None:
        self.in_flight.set(self.active)
        tallies, self._tallies = self._tallies, {}
        for tally in tallies.values():
            tally.apply()

    def register(self, registry: CollectorRegistry) -> None:
        """Expose these series from `registry`: all processes' in multiprocess mode."""
        if multiprocess():
            MultiProcessCollector(registry)
            return
        for metric in (self.requests, self.duration, self.first_byte, self.sent,
                       self.received, self.uploads, self.in_flight, self.gc_runs,
                       self.gc_freed, self.gc_deleted, self.gc_last):
            registry.register(metric)

    def gc_report(self, report: Any) -> None:
        """A collection finished (core.gc.GcReport)."""
        self.gc_runs.labels("true" if report.dry_run else "false").inc()
        if not report.dry_run:
            self.gc_freed.inc(report.bytes_freed)
            self.gc_deleted.inc(report.deleted)
        self.gc_last.set(time.time())

    def observe(self, family: str, method: str, status: int, handler: str, seconds: float,
                sent: int, received: int, first_byte: float | None = None) -> None:
        """One request answered; `first_byte`: when its headers went (streamed
        answers), else the end."""
        key = (family, method, status, handler)
        if self._batched:
            tally = self._tallies.get(key)
            if tally is None:
                if len(self._tallies) > 2000:  # statuses and methods are few; bound anyway
                    self.sync()
                tally = self._tallies[key] = _Tally(self._children_of(key))
            tally.count += 1
            tally.durations[bisect_left(BUCKETS, seconds)] += 1
            tally.duration_sum += seconds
            if tally.firsts is not None:
                at = seconds if first_byte is None else first_byte
                tally.firsts[bisect_left(BUCKETS, at)] += 1
                tally.first_sum += at
            tally.sent += sent
            tally.received += received
            return
        count, duration, out, into, first = self._children_of(key)
        count.inc()
        duration.observe(seconds)
        if first is not None:
            first.observe(seconds if first_byte is None else first_byte)
        if sent:
            out.inc(sent)
        if received:
            into.inc(received)

    def _children_of(self, key: tuple[str, str, int, str]) -> tuple:
        children = self._children.get(key)
        if children is None:
            if len(self._children) > 2000:  # statuses and methods are few; bound anyway
                self._children.clear()
            family, method, status, handler = key
            kind = KINDS.get(handler, "other")
            children = (self.requests.labels(family, method, str(status)),
                        self.duration.labels(kind), self.sent.labels(family),
                        self.received.labels(family),
                        self.first_byte.labels(kind) if kind in FIRST_BYTE else None)
            self._children[key] = children
        return children


class _Tally:
    """What one series key's requests added up to since the last sync: plain numbers
    on the hot path (a counter or histogram update takes a lock per call, and a
    histogram walks its buckets), moved into the series by `apply`."""

    __slots__ = ("children", "count", "duration_sum", "durations", "first_sum", "firsts",
                 "received", "sent")

    def __init__(self, children: tuple) -> None:
        self.children = children
        self.count = self.sent = self.received = 0
        self.durations = [0] * len(BUCKETS)
        self.duration_sum = self.first_sum = 0.0
        self.firsts = [0] * len(BUCKETS) if children[4] is not None else None

    def apply(self) -> None:
        count, duration, out, into, first = self.children
        count.inc(self.count)
        _add(duration, self.durations, self.duration_sum)
        if first is not None and self.firsts is not None:
            _add(first, self.firsts, self.first_sum)
        if self.sent:
            out.inc(self.sent)
        if self.received:
            into.inc(self.received)


def _add(histogram: Any, counts: list[int], total: float) -> None:
    """Add `counts` observations per bucket (upper bounds BUCKETS, as `observe` files
    each: in the first bucket whose bound is >= it) summing to `total` to a
    histogram child: what that many `observe` calls would have done, at once."""
    histogram._sum.inc(total)
    for bucket, n in zip(histogram._buckets, counts, strict=True):
        if n:
            bucket.inc(n)
