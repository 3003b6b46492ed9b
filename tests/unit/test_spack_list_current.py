"""`registry spack list` brings the spec rows up to the store by replaying only
the journal entries since those the rows reflect (catalog.current), not by
loading every cache, as a worker loading a cache does; either loads and
rewrites the rows when they reflect no entry or a snapshot may have pruned
what a replay needs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loadtest.spackgen import FakeSpec, make_spec
from registry.arch.indexed import describer
from registry.core.areas import SpackArea
from registry.core.grammar import Digest
from registry.index.db import Index
from registry.spack import catalog
from registry.spack.journal import WINDOW_NS, Journal, entry_name, name_ns
from registry.spack.service import SpackCaches
from registry.spack.specs import SpecDoc, SpecRecord
from registry.storage.base import CheckedDriver
from registry.storage.memory import MemoryDriver, MemoryStore


def _record(fake: FakeSpec) -> SpecRecord:
    return SpecRecord(SpecDoc.parse(fake.doc), Digest.parse(fake.tarball_digest),
                      len(fake.tarball), "oci")


async def _names(specs: catalog.SpecCatalog) -> list[str]:
    return [r.name for r in await specs.specs("c")]


def test_list_replays_what_another_writer_added_since(tmp_path: Path) -> None:
    async def run() -> None:
        area = SpackArea(CheckedDriver(MemoryDriver(MemoryStore())))
        index = Index(str(tmp_path / "index.sqlite"), describer)
        await index.open()
        try:
            specs = catalog.SpecCatalog(index)
            server = SpackCaches(area, sink=specs)  # keeps the rows, and their entry
            zlib, curl = make_spec("zlib"), make_spec("curl")
            await server.add("c", _record(zlib))
            await server.add("c", _record(curl))
            other = SpackCaches(area)  # another replica: its rows are elsewhere
            git = make_spec("git")
            await other.add("c", _record(git))
            await other.remove("c", zlib.hash)

            cli = SpackCaches(area, sink=specs)
            await catalog.current(cli, specs)
            assert await _names(specs) == ["curl", "git"]
            assert cli.known_caches() == []  # replayed, not loaded

            # A worker loading the cache tells the entries since, not every row again
            # (a rewrite of 200,000 rows and their search documents costs 100 MB):
            # a row that only a rewrite would remove shows which it did.
            stray = catalog.row_of("c", _record(make_spec("stray")))
            await index.apply([catalog.SpecPut(stray)])
            worker = SpackCaches(area, sink=specs)
            assert await worker.state("c") is not None
            assert await _names(specs) == ["curl", "git", "stray"]

            # A snapshot a window past the rows' entry may have pruned entries: a load.
            through = await index.spack_through("c")
            assert through is not None
            later = entry_name(name_ns(through) + 2 * WINDOW_NS)

            state = await other.state("c")
            assert state is not None
            await Journal(area, "c").write_snapshot(later, state.snapshot_lines())
            await catalog.current(cli, specs)
            assert cli.known_caches() == ["c"]
            assert await _names(specs) == ["curl", "git"]  # rewritten
        finally:
            await index.close()

    asyncio.run(run())
