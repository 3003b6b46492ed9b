"""In-memory caches with exact invalidation per repository, across worker processes.

Manifest bytes are content-addressed and never go stale. Tags, revision links,
blob links and referrer lists do change, so their cache entries carry the
*write generation of their repository* at the time they were read: every write
that could change one of them bumps that repository's generation, and an entry
is only used while it is unchanged. A push to one repository therefore leaves
every other repository's entries alone. Generations live in a fixed table of
slots (a repository hashes to one; two that share a slot share invalidations,
which costs a miss, never a stale answer), in shared memory created before the
workers fork, so a write in one worker invalidates every worker's entries at
once. Readers take the generation *before* reading storage, so an entry can
only be older than the generation it carries: a race costs a miss.

Every cache is bounded by entries and by an estimate of its bytes.

Replicas on separate machines share no memory; for them (the s3 driver) the
tag caches are off unless a TTL is configured, which then bounds the staleness.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Awaitable, Callable, Hashable, MutableSequence
from multiprocessing.synchronize import Lock
from typing import Any, Generic, TypeVar, overload

# The scope of things that belong to no repository (blob sizes): bumped by
# whatever deletes blobs from the store itself (garbage collection).
GLOBAL = ""
SLOTS = 4096
V = TypeVar("V")  # what a GenerationCache holds


class Generations:
    """Write counters per scope (a repository name, or GLOBAL), optionally in memory
    shared by forked workers. Forked workers share the string hash seed, so a
    name maps to the same slot in all of them."""

    def __init__(self, shared: bool = False) -> None:
        self._slots: MutableSequence[int]
        self._lock: Lock | None
        if shared:
            self._slots = multiprocessing.Array("Q", SLOTS, lock=False)
            self._lock = multiprocessing.Lock()
        else:
            self._slots = [0] * SLOTS
            self._lock = None

    def value(self, scope: str) -> int:
        # An aligned 64-bit read: no lock needed.
        return self._slots[hash(scope) % SLOTS]

    def bump(self, scope: str) -> None:
        slot = hash(scope) % SLOTS
        if self._lock is None:
            self._slots[slot] += 1
            return
        with self._lock:
            self._slots[slot] += 1


def repo_scope(key: Hashable) -> str:
    """The scope of a key that is a repository name or a tuple starting with one."""
    return key[0] if isinstance(key, tuple) else key  # type: ignore[return-value]


def global_scope(key: Hashable) -> str:
    return GLOBAL


def fixed_weight(n: int) -> Callable[[Any], int]:
    """A weigher for small values of about `n` bytes each, key included."""
    return lambda value: n


def _small(value: Any) -> int:
    return 256  # a digest, a short link or a size, with its key


class GenerationCache(Generic[V]):
    """key -> value, valid while the generation of the key's scope is unchanged (and
    within ttl). At most `max_entries` entries and `max_weight` by `weigh`."""

    def __init__(self, generations: Generations, enabled: bool = True,
                 ttl: float | None = None, max_entries: int = 100_000,
                 max_weight: int = 16 << 20,
                 weigh: Callable[[V], int] | None = None,
                 scope_of: Callable[[Hashable], str] = repo_scope) -> None:
        self.generations = generations
        self.enabled = enabled
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.weigh = weigh or _small
        self.scope_of = scope_of
        self._slots = generations._slots  # read directly on the hot path (get)
        self._weight = 0
        self._items: dict[Hashable, tuple[V, int, float]] = {}

    def generation(self, key: Hashable) -> int:
        """The generation to pass to `put` for a value about to be read for `key`."""
        return self.generations.value(self.scope_of(key))

    def get(self, key: Hashable) -> V | None:
        if not self.enabled:
            return None
        item = self._items.get(key)
        if item is None:
            return None
        value, gen, stamp = item
        if gen != self._slots[hash(self.scope_of(key)) % SLOTS] or (
                self.ttl is not None and time.monotonic() - stamp > self.ttl):
            self._drop(key)
            return None
        return value

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._weight -= self.weigh(item[0])

    @overload
    async def fetch(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V: ...

    @overload
    async def fetch(self, key: Hashable,
                    load: Callable[[], Awaitable[V | None]]) -> V | None: ...

    async def fetch(self, key: Hashable,
                    load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, else `await load()`, cached unless it is None.

        The generation is read before loading, as the invalidation scheme needs;
        None (absent) is never cached, and exceptions propagate uncached."""
        value = self.get(key)
        if value is not None:
            return value
        gen = self.generation(key)
        value = await load()
        if value is not None:
            self.put(key, value, gen)
        return value

    def stamp(self, key: Hashable) -> float | None:
        """When the entry for `key` was stored (time.monotonic), if there is one."""
        item = self._items.get(key)
        return item[2] if item is not None else None

    def put(self, key: Hashable, value: V, gen: int, stamp: float | None = None) -> None:
        """Store a value read from storage after the generation was `gen`. A value
        derived from another cached value passes that one's `stamp`, so that a TTL
        bounds the staleness of both together rather than adding up."""
        if not self.enabled:
            return
        weight = self.weigh(value)
        if weight > self.max_weight // 4:
            return  # one huge value would flush everything else
        self._drop(key)
        if len(self._items) >= self.max_entries or self._weight + weight > self.max_weight:
            # Entries of older generations are dead anyway; a full reset is the
            # simplest bound and costs one re-read per live key.
            self._items.clear()
            self._weight = 0
        self._items[key] = (value, gen, time.monotonic() if stamp is None else stamp)
        self._weight += weight
