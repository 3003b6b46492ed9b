"""Helpers for the core tests: counting store calls, a world with a GC watch (pushing
through the services is in tests/pushing.py)."""

from __future__ import annotations


def ops(driver) -> dict[str, int]:
    """Calls so far per store operation."""
    return {op: s["calls"] for op, s in driver.stats()["ops"].items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {op: after[op] - before[op] for op in after if after[op] != before[op]}


def gc_world():
    """A registry over the memory driver with a GC watch: (driver, watch,
    generations, registry)."""
    from registry.core.cache import Generations
    from registry.core.factory import CoreSettings, build_registry
    from registry.core.gc import GcWatch
    from registry.storage.memory import MemoryDriver

    driver = MemoryDriver()
    watch = GcWatch(driver)
    generations = Generations()
    reg = build_registry(driver, settings=CoreSettings(gc_watch=watch),
                         generations=generations)
    return driver, watch, generations, reg

