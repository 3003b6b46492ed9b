"""GenerationCache: exact invalidation per repository, and its bounds."""

from __future__ import annotations

import time

from registry.core.cache import GLOBAL, GenerationCache, Generations, global_scope


async def test_entry_dies_with_its_repository_generation() -> None:
    gens = Generations()
    cache = GenerationCache(gens)
    assert await cache.fetch(("a", "k"), _const("v1")) == "v1"
    assert await cache.fetch(("a", "k"), _const("other")) == "v1"
    gens.bump("a")
    assert cache.get(("a", "k")) is None
    assert await cache.fetch(("a", "k"), _const("v2")) == "v2"


async def test_a_write_to_one_repository_keeps_the_others_entries() -> None:
    gens = Generations()
    cache = GenerationCache(gens)
    names = [f"team/repo{i}" for i in range(200)]
    for name in names:
        await cache.fetch((name, "latest"), _const(name))
    gens.bump("team/repo7")
    assert cache.get(("team/repo7", "latest")) is None
    # Slots are shared by a few names at most: nearly every other entry survives.
    kept = sum(cache.get((n, "latest")) == n for n in names if n != "team/repo7")
    assert kept >= 190


def test_global_scope_is_its_own() -> None:
    gens = Generations()
    sizes = GenerationCache(gens, scope_of=global_scope)
    sizes.put("sha256:x", 5, gens.value(GLOBAL))
    gens.bump("any/repo")
    assert sizes.get("sha256:x") == 5 or hash("any/repo") % 4096 == hash(GLOBAL) % 4096
    gens.bump(GLOBAL)
    assert sizes.get("sha256:x") is None


def test_shared_generations_cross_a_fork() -> None:
    import os

    gens = Generations(shared=True)
    before = gens.value("r")
    pid = os.fork()
    if pid == 0:
        gens.bump("r")
        os._exit(0)
    os.waitpid(pid, 0)
    assert gens.value("r") == before + 1


async def test_a_value_read_before_a_write_is_never_served_after_it() -> None:
    gens = Generations()
    cache = GenerationCache(gens)

    async def load_racing_a_write() -> str:
        gens.bump("k")  # a write lands while the value is being read
        return "stale"

    assert await cache.fetch("k", load_racing_a_write) == "stale"
    assert cache.get("k") is None


def test_disabled_cache_stores_nothing() -> None:
    cache = GenerationCache(Generations(), enabled=False)
    cache.put("k", "v", 0)
    assert cache.get("k") is None


def test_weight_bound_holds() -> None:
    gens = Generations()
    cache = GenerationCache(gens, max_weight=100, weigh=len, scope_of=global_scope)
    for i in range(50):
        cache.put(i, b"x" * 20, gens.value(GLOBAL))
        assert cache._weight <= 100
        assert cache._weight == sum(len(v) for v, _, _ in cache._items.values())
    assert cache.get(49) == b"x" * 20
    cache.put("huge", b"x" * 60, gens.value(GLOBAL))  # over a quarter of the bound: not kept
    assert cache.get("huge") is None
    cache.put(49, b"y" * 10, gens.value(GLOBAL))  # replacing an entry re-weighs it
    assert cache._weight == sum(len(v) for v, _, _ in cache._items.values())


def test_every_cache_has_a_byte_bound() -> None:
    """Even without a weigher, entries count against a byte bound."""
    cache = GenerationCache(Generations(), scope_of=global_scope)
    for i in range(200_000):
        cache.put(i, i, 0)
    assert cache._weight <= cache.max_weight


def test_entry_bound_holds() -> None:
    gens = Generations()
    cache = GenerationCache(gens, max_entries=10, scope_of=global_scope)
    for i in range(35):
        cache.put(i, i, gens.value(GLOBAL))
        assert len(cache._items) <= 10
    assert cache.get(34) == 34


def _const(value: str):
    async def load() -> str:
        return value
    return load


def test_a_derived_entry_expires_with_its_source() -> None:
    """With a TTL, a value built from a cached one carries the source's stamp, so the
    TTL bounds their staleness together instead of adding up."""
    gens = Generations()
    source = GenerationCache(gens, ttl=10.0)
    derived = GenerationCache(gens, ttl=10.0)
    source.put("list", ["a"], gens.value("list"), stamp=time.monotonic() - 9.5)
    derived.put("page", "rendered", gens.value("page"), stamp=source.stamp("list"))
    assert derived.get("page") == "rendered"
    derived.put("late", "rendered", gens.value("late"), stamp=time.monotonic() - 10.5)
    assert derived.get("late") is None
    assert source.stamp("missing") is None


def test_tag_list_weight_tracks_its_real_size() -> None:
    """A 100,000-tag list is weighed near its real size, so the 64 MiB bound on tag
    lists holds in bytes and not only in lists."""
    import sys

    from registry.core.tags import _weigh_tags

    tags = [f"gcc-13.2.0-{i:06d}-abcdefghijklmnopqrstuvwxyz012345.spack" for i in range(100_000)]
    real = sys.getsizeof(tags) + sum(sys.getsizeof(t) for t in tags)
    assert real * 0.8 <= _weigh_tags(tags) <= real * 1.5
