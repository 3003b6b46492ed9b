"""GenerationCache: exact invalidation by write generation, and its bounds."""

from __future__ import annotations

import time

from registry.core.cache import Generation, GenerationCache


async def test_entry_dies_with_its_generation() -> None:
    gen = Generation()
    cache = GenerationCache(gen)
    assert await cache.fetch("k", _const("v1")) == "v1"
    assert await cache.fetch("k", _const("other")) == "v1"
    gen.bump()
    assert cache.get("k") is None
    assert await cache.fetch("k", _const("v2")) == "v2"


async def test_a_value_read_before_a_write_is_never_served_after_it() -> None:
    gen = Generation()
    cache = GenerationCache(gen)

    async def load_racing_a_write() -> str:
        gen.bump()  # a write lands while the value is being read
        return "stale"

    assert await cache.fetch("k", load_racing_a_write) == "stale"
    assert cache.get("k") is None


def test_disabled_cache_stores_nothing() -> None:
    cache = GenerationCache(Generation(), enabled=False)
    cache.put("k", "v", 0)
    assert cache.get("k") is None


def test_weight_bound_holds() -> None:
    gen = Generation()
    cache = GenerationCache(gen, max_weight=100, weigh=len)
    for i in range(50):
        cache.put(i, b"x" * 20, gen.value)
        assert cache._weight <= 100
        assert cache._weight == sum(len(v) for v, _, _ in cache._items.values())
    assert cache.get(49) == b"x" * 20
    cache.put("huge", b"x" * 60, gen.value)  # over a quarter of the bound: not kept
    assert cache.get("huge") is None
    cache.put(49, b"y" * 10, gen.value)  # replacing an entry re-weighs it
    assert cache._weight == sum(len(v) for v, _, _ in cache._items.values())


def test_entry_bound_holds() -> None:
    gen = Generation()
    cache = GenerationCache(gen, max_entries=10)
    for i in range(35):
        cache.put(i, i, gen.value)
        assert len(cache._items) <= 10
    assert cache.get(34) == 34


def _const(value: str):
    async def load() -> str:
        return value
    return load


def test_a_derived_entry_expires_with_its_source() -> None:
    """With a TTL, a value built from a cached one carries the source's stamp, so the
    TTL bounds their staleness together instead of adding up."""
    gen = Generation()
    source = GenerationCache(gen, ttl=10.0)
    derived = GenerationCache(gen, ttl=10.0)
    source.put("list", ["a"], gen.value, stamp=time.monotonic() - 9.5)
    derived.put("page", "rendered", gen.value, stamp=source.stamp("list"))
    assert derived.get("page") == "rendered"
    derived.put("late", "rendered", gen.value, stamp=time.monotonic() - 10.5)
    assert derived.get("late") is None
    assert source.stamp("missing") is None
