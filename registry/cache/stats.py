"""What a node cache did: hits, misses, coalesced requests, bytes in and out.

Each process counts in memory (an attribute increment per request) and writes
its counts to `<cache dir>/_tmp/keep-stats/<pid>.json` every FLUSH_S seconds
and when it stops; a process that starts folds the files of processes that are
gone into `past.json`, so the totals cover the cache's whole life across
restarts. `registry cache stats` sums the files; the metrics endpoint (the
operations issue) will read the same counters.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from registry.core.scratch import kept_directory
from registry.lifecycle import pid_alive

FLUSH_S = 5.0


@dataclass
class CacheStats:
    """Counters of one process (or, summed, of a cache)."""

    hits: int = 0  # blob requests answered from what the cache holds
    misses: int = 0  # blob requests that started a download
    coalesced: int = 0  # blob requests that joined a download in flight (any worker)
    bytes_upstream: int = 0  # blob bytes received from the upstream or a peer
    bytes_served: int = 0  # blob bytes sent to clients (whole bodies and ranges)
    stale: int = 0  # tags answered stale because the upstream failed
    evictions: int = 0
    bytes_evicted: int = 0
    fetch_errors: int = 0  # downloads that failed (upstream fault, bad digest)
    prefetched: int = 0  # downloads started for the layers of a manifest just fetched

    def add(self, other: CacheStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: object) -> CacheStats:
        out = cls()
        if isinstance(doc, dict):
            for f in fields(out):
                value = doc.get(f.name)
                if isinstance(value, int) and value >= 0:
                    setattr(out, f.name, value)
        return out


def _read(path: Path) -> CacheStats:
    try:
        return CacheStats.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return CacheStats()


def _write(path: Path, stats: CacheStats) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stats.to_json()))
    os.replace(tmp, path)


class StatsFiles:
    """The counters' files of one cache directory (blocking file work: call it
    off the event loop)."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.dir = Path(kept_directory(str(cache_dir), "stats"))

    def own(self) -> Path:
        return self.dir / f"{os.getpid()}.json"

    def read_own(self) -> CacheStats:
        """What this process last wrote (zeros before its first write)."""
        return _read(self.own())

    def write(self, stats: CacheStats) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _write(self.own(), stats)

    def fold_dead(self) -> None:
        """Add the files of processes that are gone to past.json (under a lock:
        workers start together)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            past = _read(self.dir / "past.json")
            dead = [p for p in self.dir.glob("*.json")
                    if p.stem.isdigit() and not pid_alive(int(p.stem))]
            if not dead:
                return
            for path in dead:
                past.add(_read(path))
            _write(self.dir / "past.json", past)
            for path in dead:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def totals(self) -> tuple[CacheStats, int]:
        """The counters summed over the cache's life, and how many processes are
        counting now."""
        total = _read(self.dir / "past.json")
        live = 0
        for path in self.dir.glob("*.json"):
            if path.stem.isdigit():
                total.add(_read(path))
                live += pid_alive(int(path.stem))
        return total, live
