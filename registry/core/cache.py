"""In-memory caches with exact invalidation across worker processes.

Manifest bytes are content-addressed and never go stale. Tags and revision
links do change, so their cache entries carry the *write generation* they were
read at: every manifest/tag write or delete bumps the generation, and an entry
is only used while the generation is unchanged. With several worker processes
the generation lives in shared memory created before the fork, so a write in
one worker invalidates every worker's entries at once. Readers take the
generation *before* reading storage, so an entry can only be older than the
generation it carries, never newer: a race costs a miss, never a stale answer.

Replicas on separate machines share no memory; for them (the s3 driver) the
tag cache is off unless a TTL is configured, which then bounds the staleness.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Awaitable, Callable
from typing import Any


class Generation:
    """A counter of writes, optionally in memory shared by forked workers."""

    def __init__(self, shared: bool = False) -> None:
        self._shared = multiprocessing.Value("Q", 0) if shared else None
        self._local = 0

    @property
    def value(self) -> int:
        if self._shared is None:
            return self._local
        return self._shared.get_obj().value  # an aligned 64-bit read: no lock needed

    def bump(self) -> None:
        if self._shared is None:
            self._local += 1
            return
        with self._shared.get_lock():
            self._shared.value += 1


class GenerationCache:
    """key -> value, valid while the generation is unchanged (and within ttl)."""

    def __init__(self, generation: Generation, enabled: bool = True,
                 ttl: float | None = None, max_entries: int = 100_000,
                 max_weight: int | None = None,
                 weigh: Callable[[Any], int] | None = None) -> None:
        self.generation = generation
        self.enabled = enabled
        self.ttl = ttl
        self.max_entries = max_entries
        # With `weigh`, the summed weight of the entries (e.g. bytes) stays under max_weight.
        self.max_weight = max_weight
        self.weigh = weigh
        self._weight = 0
        self._items: dict[Any, tuple[Any, int, float]] = {}

    def get(self, key: Any) -> Any | None:
        if not self.enabled:
            return None
        item = self._items.get(key)
        if item is None:
            return None
        value, gen, stamp = item
        if gen != self.generation.value or (
                self.ttl is not None and time.monotonic() - stamp > self.ttl):
            self._drop(key)
            return None
        return value

    def _drop(self, key: Any) -> None:
        item = self._items.pop(key, None)
        if item is not None and self.weigh is not None:
            self._weight -= self.weigh(item[0])

    async def fetch(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value, else `await load()`, cached unless it is None.

        The generation is read before loading, as the invalidation scheme needs;
        None (absent) is never cached, and exceptions propagate uncached."""
        value = self.get(key)
        if value is not None:
            return value
        gen = self.generation.value
        value = await load()
        if value is not None:
            self.put(key, value, gen)
        return value

    def stamp(self, key: Any) -> float | None:
        """When the entry for `key` was stored (time.monotonic), if there is one."""
        item = self._items.get(key)
        return item[2] if item is not None else None

    def put(self, key: Any, value: Any, gen: int, stamp: float | None = None) -> None:
        """Store a value read from storage after the generation was `gen`. A value
        derived from another cached value passes that one's `stamp`, so that a TTL
        bounds the staleness of both together rather than adding up."""
        if not self.enabled:
            return
        weight = self.weigh(value) if self.weigh is not None else 0
        if self.max_weight is not None and weight > self.max_weight // 4:
            return  # one huge value would flush everything else
        self._drop(key)
        if len(self._items) >= self.max_entries or (
                self.max_weight is not None and self._weight + weight > self.max_weight):
            # Entries of an older generation are dead anyway; a full reset is the
            # simplest bound and costs one re-read per live key.
            self._items.clear()
            self._weight = 0
        self._items[key] = (value, gen, time.monotonic() if stamp is None else stamp)
        self._weight += weight
