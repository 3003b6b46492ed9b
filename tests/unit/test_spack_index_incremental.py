"""The server-kept spack index, kept incrementally (registry.spack.state over
statedb, rendered in chunks by hash prefix: chunks.py), equals a full rebuild
from the journal and, byte for byte, spack's database model serialised at
once, after any sequence of pushes and removals, renderings along the way
and either chunk width (hypothesis)."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.spackgen import FakeSpec, make_spec
from registry.core.areas import SpackArea
from registry.core.factory import build_registry
from registry.core.grammar import Digest
from registry.spack import chunks
from registry.spack.service import SpackCaches
from registry.spack.specs import SpecDoc, SpecRecord
from registry.spack.state import DB_VERSION
from registry.storage.base import CheckedDriver
from registry.storage.memory import MemoryDriver, MemoryStore


def _pool() -> list[FakeSpec]:
    """Specs sharing dependencies, both formats: zlib under most, two levels deep."""
    out: list[FakeSpec] = []
    for fmt in (4, 5):
        zlib = make_spec("zlib", fmt=fmt)
        ssl = make_spec("openssl", deps=[zlib], fmt=fmt)
        curl = make_spec("curl", deps=[ssl, zlib], fmt=fmt)
        out += [zlib, ssl, curl, make_spec("git", deps=[curl], fmt=fmt),
                make_spec("cmake", deps=[curl, zlib], fmt=fmt)]
    return out


POOL = _pool()


def _record(fake: FakeSpec) -> SpecRecord:
    return SpecRecord(SpecDoc.parse(fake.doc), Digest.parse(fake.tarball_digest),
                      len(fake.tarball), "oci")


def _replica(store: MemoryStore) -> SpackCaches:
    driver = CheckedDriver(MemoryDriver(store))
    return SpackCaches(SpackArea(driver), build_registry(driver).blobs, refresh_s=0.0)


def _model(live: set[str], fmt: int) -> dict:
    """spack's database of the live specs of format `fmt`, made from scratch."""
    nodes: dict[str, dict] = {}
    for fake in POOL:
        if fake.hash in live and fake.fmt == fmt:
            for node in fake.nodes:
                nodes.setdefault(node["hash"], node)
    parents: dict[str, set[str]] = {}
    for h, node in nodes.items():
        for dep in node.get("dependencies", []):
            parents.setdefault(dep["hash"], set()).add(h)
    roots = {f.hash for f in POOL if f.hash in live and f.fmt == fmt}
    return {h: {"spec": n, "ref_count": len(parents.get(h, ())), "in_buildcache": h in roots}
            for h, n in nodes.items()}


def _full(installs: dict, fmt: int) -> bytes:
    """The database made at once: what spack's own writer would produce."""
    doc = {"database": {"version": DB_VERSION[fmt], "installs": dict(sorted(installs.items()))}}
    return json.dumps(doc, separators=(",", ":")).encode()


async def _db(caches: SpackCaches, layout: str) -> tuple[Digest, bytes]:
    rendered = await caches.index("c", layout)
    assert rendered is not None and caches.blobs is not None
    data = await caches.blobs.read(rendered.digest)
    assert rendered.size == len(data)
    return rendered.digest, data


def _layouts(live: set[str]) -> list[tuple[str, int]]:
    """The layouts and the format each one's index holds."""
    v3 = 5 if any(f.fmt == 5 and f.hash in live for f in POOL) else 4
    return [("v2", 4), ("v3", v3)]  # no spack 1.x spec: spack 1.x reads the v7 database


ops = st.lists(st.tuples(st.booleans(), st.integers(0, len(POOL) - 1)), min_size=1,
               max_size=24)


@settings(max_examples=25, deadline=None)
@given(ops, st.sampled_from([1, 2]))
def test_incremental_index_equals_a_full_rebuild(steps: list[tuple[bool, int]],
                                                 width: int) -> None:
    async def run() -> None:
        store = MemoryStore()
        kept = _replica(store)
        live: set[str] = set()
        for add, k in steps:
            fake = POOL[k]
            if add:
                await kept.add("c", _record(fake))
                live.add(fake.hash)
            else:
                await kept.remove("c", fake.hash)
                live.discard(fake.hash)
            if await kept.state("c") is not None:  # rendered after every change
                for layout, fmt in _layouts(live):
                    assert (await _db(kept, layout))[1] == _full(_model(live, fmt), fmt)
        if not live and await kept.state("c") is None:
            return
        rebuilt = _replica(store)  # a new process: everything from the journal
        for layout, fmt in _layouts(live):
            digest, data = await _db(kept, layout)
            again, data_again = await _db(rebuilt, layout)
            assert data == _full(_model(live, fmt), fmt)  # byte for byte
            assert data_again == data and again == digest

    # Width 1: few chunks of several nodes each; 2 (the server's): mostly one each.
    saved, chunks.CHUNK_CHARS = chunks.CHUNK_CHARS, width
    try:
        asyncio.run(run())
    finally:
        chunks.CHUNK_CHARS = saved
