"""The database spack reads, kept rendered in chunks by hash prefix
(registry.spack.chunks): a push renders again only the chunks of the nodes it
touched, and the document read back a page at a time is the document made at
once, whatever the page size and wherever chunks come and go."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from loadtest.spack_seed import specs
from loadtest.spackgen import FakeSpec, make_spec
from registry.core.grammar import Digest
from registry.spack import chunks, statedb
from registry.spack.specs import SpecDoc, SpecRecord


def _record(fake: FakeSpec) -> SpecRecord:
    return SpecRecord(SpecDoc.parse(fake.doc), Digest.parse(fake.tarball_digest),
                      len(fake.tarball), "oci")


def _conn() -> sqlite3.Connection:
    return statedb.StateDB()._call(lambda conn: conn, ())


def _push(conn: sqlite3.Connection, fakes: list[FakeSpec], start: int = 0) -> None:
    statedb.apply_many(conn, "c", [(f"e{start + i:08d}", f.hash, _record(f))
                                   for i, f in enumerate(fakes)])


def _expected(live: list[FakeSpec]) -> bytes:
    nodes: dict[str, dict] = {}
    for fake in live:
        for node in fake.nodes:
            nodes.setdefault(node["hash"], node)
    refs: dict[str, int] = {}
    for node in nodes.values():
        for dep in node.get("dependencies", []):
            refs[dep["hash"]] = refs.get(dep["hash"], 0) + 1
    roots = {f.hash for f in live}
    installs = {h: {"spec": nodes[h], "ref_count": refs.get(h, 0), "in_buildcache": h in roots}
                for h in sorted(nodes)}
    return json.dumps({"database": {"version": "8", "installs": installs}},
                      separators=(",", ":")).encode()


def _document(conn: sqlite3.Connection) -> bytes:
    out: list[bytes] = []
    after: str | None = None
    while True:
        parts, after = chunks.page(conn, "c", 5, "8", after)
        out += parts
        if after is None:
            return b"".join(out)


def _dirty(conn: sqlite3.Connection) -> set[str]:
    return {p for (p,) in conn.execute("SELECT prefix FROM dirty WHERE fmt = 5")}


def test_a_push_renders_only_the_chunks_it_touched() -> None:
    conn = _conn()
    base = list(specs(300))
    _push(conn, base)
    assert len(_dirty(conn)) > 200  # a first load: nearly every chunk
    chunks.digest(conn, "c", 5, "8")
    assert _dirty(conn) == set()
    lib0, lib1 = base[0], base[1]
    new = make_spec("extra", "1.0", [lib0, lib1], fmt=5, seed=10**9)
    _push(conn, [new], 1000)
    # The new node, and its dependencies' ref_count: at most three chunks.
    assert _dirty(conn) == {chunks.key(h) for h in (new.hash, lib0.hash, lib1.hash)}
    hexdigest, size = chunks.digest(conn, "c", 5, "8")
    data = _expected([*base, new])
    assert _document(conn) == data
    assert (hexdigest, size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_chunks_come_and_go_at_either_end(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of one chunk each: every page boundary is a chunk boundary.
    monkeypatch.setattr(chunks, "PAGE_BYTES", 1)
    conn = _conn()
    fakes = sorted(specs(40), key=lambda f: f.hash)
    roots = [f for f in fakes if f.name.startswith("pkg")]
    _push(conn, fakes)
    chunks.digest(conn, "c", 5, "8")
    live = list(fakes)
    for n, gone in enumerate((roots[0], roots[-1], roots[len(roots) // 2])):
        statedb.apply_many(conn, "c", [(f"z{n}", gone.hash, None)])
        live.remove(gone)
        hexdigest, size = chunks.digest(conn, "c", 5, "8")
        data = _expected(live)
        assert _document(conn) == data
        assert (hexdigest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    for n, fake in enumerate(live):  # down to nothing: an empty database
        statedb.apply_many(conn, "c", [(f"zz{n:04d}", fake.hash, None)])
    chunks.digest(conn, "c", 5, "8")
    assert _document(conn) == b'{"database":{"version":"8","installs":{}}}'
    assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
