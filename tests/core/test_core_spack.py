"""The server-kept spack index over the in-memory driver: the journal, the state
each process keeps, replicas sharing one store, snapshots."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from loadtest.spackgen import make_spec
from registry.core.areas import SpackArea
from registry.core.factory import build_registry
from registry.core.grammar import Digest
from registry.spack import journal as journal_mod
from registry.spack.journal import Journal
from registry.spack.service import SpackCaches
from registry.spack.specs import SpecDoc, SpecRecord
from registry.storage.base import CheckedDriver
from registry.storage.memory import MemoryDriver, MemoryStore


def record(fake, source="oci") -> SpecRecord:
    return SpecRecord(SpecDoc.parse(fake.doc), Digest.parse(fake.tarball_digest),
                      len(fake.tarball), source)


def replica(store: MemoryStore) -> SpackCaches:
    driver = CheckedDriver(MemoryDriver(store))
    reg = build_registry(driver)
    return SpackCaches(SpackArea(driver), reg.blobs, refresh_s=0.0)


async def installs(caches: SpackCaches, cache: str, layout: str = "oci") -> dict:
    rendered = await caches.index(cache, layout)
    assert rendered is not None
    return json.loads(await caches.blobs.read(rendered.digest))["database"]["installs"]


async def test_concurrent_pushes_through_two_replicas_lose_nothing():
    store = MemoryStore()
    a, b = replica(store), replica(store)
    specs = [make_spec(f"pkg{i}", seed=i) for i in range(40)]

    async def push(i: int) -> None:
        await (a if i % 2 else b).add("site/cache", record(specs[i]))

    await asyncio.gather(*(push(i) for i in range(len(specs))))
    want = {s.hash for s in specs}
    assert set(await installs(a, "site/cache")) == want
    assert set(await installs(b, "site/cache")) == want


async def test_removal_on_one_replica_reaches_the_other():
    store = MemoryStore()
    a, b = replica(store), replica(store)
    x, y = make_spec("x"), make_spec("y")
    await a.add("c", record(x))
    await a.add("c", record(y))
    assert set(await installs(b, "c")) == {x.hash, y.hash}
    await b.remove("c", x.hash)
    assert set(await installs(a, "c")) == {y.hash}


async def test_last_entry_wins_whatever_the_order_applied():
    from registry.spack.state import CacheState
    from registry.spack.statedb import StateDB
    x = record(make_spec("x"))
    db = StateDB()
    one, two = CacheState("one", db), CacheState("two", db)
    add, rm = "00000000000000000001-a", "00000000000000000002-b"
    await one.apply(add, x.hash, x)
    await one.apply(rm, x.hash, None)
    await two.apply(rm, x.hash, None)
    await two.apply(add, x.hash, x)  # arrives late: the removal is newer
    assert await one.get(x.hash) is None and await two.get(x.hash) is None
    assert await two.apply(add, x.hash, x) is False  # seen: replays are no-ops


async def test_dependencies_are_counted_once_and_released():
    dep = make_spec("zlib")
    a = make_spec("a", deps=[dep])
    b = make_spec("b", deps=[dep])
    caches = replica(MemoryStore())
    for s in (dep, a, b):
        await caches.add("c", record(s))
    got = await installs(caches, "c")
    assert got[dep.hash]["ref_count"] == 2
    assert got[dep.hash]["in_buildcache"] is True
    await caches.remove("c", a.hash)
    got = await installs(caches, "c")
    assert set(got) == {dep.hash, b.hash} and got[dep.hash]["ref_count"] == 1
    await caches.remove("c", dep.hash)  # b still needs it: listed, not in the cache
    got = await installs(caches, "c")
    assert got[dep.hash]["in_buildcache"] is False and got[dep.hash]["ref_count"] == 1


async def test_formats_go_to_their_own_databases():
    old, new = make_spec("old", fmt=4), make_spec("new", fmt=5)
    caches = replica(MemoryStore())
    await caches.add("c", record(old))
    assert (await caches.index("c", "oci")).fmt == 4  # nothing newer: a v7 database
    await caches.add("c", record(new))
    assert set(await installs(caches, "c", "v2")) == {old.hash}
    assert set(await installs(caches, "c", "v3")) == {new.hash}
    rendered = await caches.blobs.read((await caches.index("c", "v2")).digest)
    assert json.loads(rendered)["database"]["version"] == "7"


async def test_index_is_rendered_once_per_change():
    caches = replica(MemoryStore())
    await caches.add("c", record(make_spec("x")))
    first = await caches.index("c", "oci")
    assert await caches.index("c", "oci") is first
    await caches.add("c", record(make_spec("y")))
    assert (await caches.index("c", "oci")).digest != first.digest


async def test_snapshot_lets_a_new_process_start_and_prunes_old_entries(monkeypatch):
    monkeypatch.setattr("registry.spack.service.SNAPSHOT_EVERY", 10)
    store = MemoryStore()
    a = replica(store)
    specs = [make_spec(f"p{i}", seed=i) for i in range(25)]
    for s in specs:
        await a.add("c", record(s))
    await a.state("c")  # a catch-up writes the snapshot
    j = Journal(a.area, "c")
    snap = await j.latest_snapshot()
    assert snap is not None and len([item async for item in snap[1]]) >= 10
    fresh = replica(store)
    assert set(await installs(fresh, "c")) == {s.hash for s in specs}


async def test_own_push_does_not_move_the_listing_past_unseen_entries(monkeypatch):
    """A process applies its own entry without listing the journal. When its last
    listing was long before (a slow catch-up under load), that entry's time must not
    become where the next listing starts: the other replicas' entries written in
    between would never be listed. (Before the fix the other replica's spec was lost.)"""
    clock = Clock()
    monkeypatch.setattr(journal_mod, "time", clock)
    monkeypatch.setattr("registry.spack.service.time", clock)
    store = MemoryStore()
    other, busy = replica(store), replica(store)
    busy.refresh_s = 3600.0  # it listed just now (by its monotonic clock), not again
    first = make_spec("first")
    await other.add("c", record(first))
    assert set(await installs(busy, "c")) == {first.hash}
    clock.ahead_ns += 10 * 10**9
    unseen = make_spec("unseen")
    await other.add("c", record(unseen))
    clock.ahead_ns += 2 * journal_mod.WINDOW_NS
    own = make_spec("own")
    await busy.add("c", record(own))  # applied without a listing
    busy.refresh_s = 0.0
    assert set(await installs(busy, "c")) == {first.hash, unseen.hash, own.hash}


async def test_one_snapshot_per_interval_whatever_the_number_of_processes(monkeypatch):
    """Three processes apply every entry; one of them, not each, writes a snapshot
    every SNAPSHOT_EVERY entries (before: three per interval, each the whole cache)."""
    monkeypatch.setattr("registry.spack.service.SNAPSHOT_EVERY", 10)
    written: list[str] = []
    write = Journal.write_snapshot

    async def counted(self, through, lines):
        written.append(through)
        await write(self, through, lines)

    monkeypatch.setattr(Journal, "write_snapshot", counted)
    store = MemoryStore()
    processes = [replica(store) for _ in range(3)]
    specs = [make_spec(f"s{i}", seed=i) for i in range(30)]
    for i, s in enumerate(specs):
        await processes[i % 3].add("c", record(s))
    for p in processes:
        assert set(await installs(p, "c")) == {s.hash for s in specs}
    assert 1 <= len(written) <= 3, written


async def test_prune_keeps_entries_a_reader_may_still_need(monkeypatch):
    store = MemoryStore()
    driver = CheckedDriver(MemoryDriver(store))
    j = Journal(SpackArea(driver), "c")
    now = time.time_ns()
    old = journal_mod.entry_name(now - 5 * journal_mod.WINDOW_NS)
    recent = journal_mod.entry_name(now - journal_mod.WINDOW_NS)
    for name in (old, recent):
        path = f"spack/c/_journal/{journal_mod._epoch(journal_mod.name_ns(name))}/{name}"
        await driver.put_content(path, b'{"op":"remove","hash":"x"}')
    async def nothing():
        return
        yield

    await j.write_snapshot(journal_mod.entry_name(now), nothing())
    names = [n async for n, _ in j.entries(0)]
    assert names == [recent]


class Clock:
    """The wall clock of the journal and the caches, moved forward at will."""

    monotonic = staticmethod(time.monotonic)

    def __init__(self) -> None:
        self.ahead_ns = 0

    def time_ns(self) -> int:
        return time.time_ns() + self.ahead_ns

    def time(self) -> float:
        return self.time_ns() / 1e9


async def test_idle_process_catches_up_across_pruned_entries(monkeypatch):
    """A process that did not look at a cache while others pushed enough for a
    snapshot to prune the entries it never saw still ends up with every spec.
    (Before the fix it listed only the entries left and lost the pruned ones.)"""
    clock = Clock()
    monkeypatch.setattr(journal_mod, "time", clock)
    monkeypatch.setattr("registry.spack.service.time", clock)
    monkeypatch.setattr("registry.spack.service.SNAPSHOT_EVERY", 10)
    store = MemoryStore()
    a, idle = replica(store), replica(store)
    first = make_spec("first")
    await a.add("c", record(first))
    assert set(await installs(idle, "c")) == {first.hash}
    window = journal_mod.WINDOW_NS
    clock.ahead_ns += 10 * window
    unseen = [make_spec(f"unseen{i}", seed=i) for i in range(5)]
    for s in unseen:
        await a.add("c", record(s))
    clock.ahead_ns += 10 * window
    later = [make_spec(f"later{i}", seed=100 + i) for i in range(10)]
    for s in later:  # a snapshot on the way prunes the unseen specs' entries
        await a.add("c", record(s))
    assert not [n async for n, op in Journal(a.area, "c").entries(0)
                if op["hash"] in {s.hash for s in unseen}]
    want = {s.hash for s in [first, *unseen, *later]}
    assert set(await installs(idle, "c")) == want


async def test_unknown_cache_has_no_state():
    caches = replica(MemoryStore())
    assert await caches.state("nothing") is None
    assert await caches.index("nothing", "oci") is None


@pytest.mark.parametrize("doc", [
    {}, {"spec": {"_meta": {"version": 3}, "nodes": []}},
    {"spec": {"_meta": {"version": 5}, "nodes": [{"name": "x", "hash": "../../etc"}]}},
    {"spec": {"_meta": {"version": 5}, "nodes": [{"name": "X Y", "hash": "a" * 32}]}},
])
def test_malformed_specs_are_refused(doc):
    from registry.spack.specs import InvalidSpec
    with pytest.raises(InvalidSpec):
        SpecDoc.parse(doc)
