"""`compose.resolve` (the named packages' rows, then records by hash) answers exactly
what choosing over every record of the cache answered: the same roots, the same
closure in the same order, the same 404/409 errors with the same details, with the
catalog's rows read a page of 2 at a time (many builds of one name), a removed build
and a build whose dependency the cache lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loadtest.spackgen import FakeSpec, make_spec
from registry.arch.indexed import describer
from registry.core.areas import SpackArea
from registry.core.errors import RegistryError
from registry.core.grammar import Digest
from registry.index.db import Index
from registry.spack import compose
from registry.spack.catalog import SpecCatalog
from registry.spack.service import SpackCaches
from registry.spack.specs import SpecDoc, SpecRecord
from registry.spack.wanted import Wanted
from registry.storage.base import CheckedDriver
from registry.storage.memory import MemoryDriver, MemoryStore

REQUESTS = [
    (["mylib"], None), (["mylib"], "x86_64_v2"), (["mylib"], "zen3"), (["mylib"], "zen2"),
    (["mylib@1.1"], None), (["mylib@1.0 +mpi"], None), (["mylib ~mpi", "tool"], None),
    (["mylib@1.2"], "x86_64_v2"), (["tool", "mylib@1.0"], "x86_64_v3"), (["nosuch"], None),
    (["broken"], None), (["gone"], None), (["mylib@9"], None), (["lib0", "lib1"], None),
]


def _record(fake: FakeSpec) -> SpecRecord:
    return SpecRecord(SpecDoc.parse(fake.doc), Digest.parse(fake.tarball_digest),
                      len(fake.tarball), "oci")


def _old(wanted: list[Wanted], target: str | None,
         held: dict[str, SpecRecord]) -> compose.Closure:
    """What the API did before: choose among every record of the cache."""
    by_name: dict[str, list[SpecRecord]] = {}
    for record in held.values():
        by_name.setdefault(record.root.name, []).append(record)
    roots = [compose.choose(w, by_name.get(w.name, ()), target) for w in wanted]
    return compose.closure(roots, held, target)


def _answer(fn) -> object:
    try:
        image = fn()
    except RegistryError as exc:
        return type(exc).__name__, str(exc), exc.detail
    return [r.hash for r in image.roots], [r.hash for r in image.records]


def test_resolve_answers_as_choosing_over_every_record(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(compose, "ROWS_PAGE", 2)

    async def run() -> None:
        index = Index(str(tmp_path / "index.sqlite"), describer)
        await index.open()
        try:
            catalog = SpecCatalog(index)
            caches = SpackCaches(SpackArea(CheckedDriver(MemoryDriver(MemoryStore()))),
                                 sink=catalog)
            libs = [make_spec(f"lib{i}", "1.0", target="x86_64", seed=i) for i in range(3)]
            zen3lib = make_spec("libz", "2.0", target="zen3", seed=9)
            specs = [*libs, zen3lib]
            for n, (version, target, mpi) in enumerate([
                    ("1.0", "x86_64_v2", True), ("1.0", "x86_64_v3", False),
                    ("1.1", "x86_64_v2", False), ("1.1", "x86_64_v3", True),
                    ("1.2", "zen3", False), ("1.1", "x86_64", False)]):
                spec = make_spec("mylib", version, [libs[n % 3]], target=target, seed=100 + n)
                spec.nodes[0]["parameters"]["mpi"] = mpi
                specs.append(spec)
            specs.append(make_spec("tool", "3.0", [libs[0], zen3lib], target="zen3", seed=50))
            specs.append(make_spec("broken", "1.0", [make_spec("missing", seed=7)], seed=51))
            gone = make_spec("gone", "1.0", seed=52)
            specs.append(gone)
            for spec in specs:
                await caches.add("c", _record(spec))
            await caches.remove("c", gone.hash)

            held = {r.hash: r async for r in caches.records("c")}
            for texts, target in REQUESTS:
                wanted = [Wanted.parse(t) for t in texts]
                new = await _async_answer(compose.resolve(wanted, target, "c", caches,
                                                          catalog))
                assert new == _answer(lambda w=wanted, t=target: _old(w, t, held)), texts
        finally:
            await index.close()

    asyncio.run(run())


async def _async_answer(coro) -> object:
    try:
        image = await coro
    except RegistryError as exc:
        return type(exc).__name__, str(exc), exc.detail
    return [r.hash for r in image.roots], [r.hash for r in image.records]

