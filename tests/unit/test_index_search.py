"""Full-text search over the index (index/search.py, core/search.py): the user's words
quoted into FTS5 phrases, and the documents the index writer keeps per manifest and per
spec, found by the parts and the whole of names like py-numpy, hdf5@1.14, x86_64_v3."""

from __future__ import annotations

import json
import sqlite3

import pytest
from pushing import OCI_MANIFEST, descriptor, digest_of, manifest_doc
from test_index_builds import image, index_of, put, rewound
from test_index_catchup_builds import store

from registry.arch.indexed import describer
from registry.core.factory import build_registry
from registry.core.indexing import catch_up, rebuild
from registry.core.search import BadSearch, cursor, parse_cursor, terms
from registry.index import schema, search
from registry.index.db import Index
from registry.index.records import (
    ManifestDeleted,
    SignatureRow,
    SignaturesSeen,
    SpecDeleted,
    SpecPut,
    SpecRow,
    SpecsReset,
    TagDeleted,
    TagSet,
)
from registry.index.search import Hit, SearchQuery, match_expression, phrase
from registry.storage.memory import MemoryDriver

TITLE = "org.opencontainers.image.title"
TARGET = "io.github.registry.arch.target"


def spec(name: str, version: str, target: str = "x86_64_v3", cache: str = "spack/cache",
         h: str | None = None, **variants) -> SpecRow:
    return SpecRow(cache, h or f"{name}{version}".replace(".", "x").ljust(32, "a"), name,
                   version, "linux", "ubuntu22.04", target, "gcc@12.3.0",
                   variants or {"mpi": True, "shared": False}, (("zlib", "z" * 32),), 10, 5,
                   "oci", 1.0)


async def found(index: Index, *words: str, **filters) -> list[tuple[str, str, str]]:
    hits, _ = await index.search(SearchQuery(terms=words, **filters))
    return [(h.kind, h.repo, h.key) for h in hits]


def test_words_become_phrases_whatever_they_hold():
    assert phrase("py-numpy") == '"py-numpy"'
    assert phrase('a"b') == '"a""b"'
    assert phrase("num*") == '"num" *'
    assert phrase("@@@") is None and phrase("*") is None
    assert match_expression(["NEAR(a", "OR", "col:x", "^b"]) == (
        '"NEAR(a" AND "OR" AND "col:x" AND "^b"')
    assert match_expression(["--", "+"]) is None


def test_the_query_text_is_checked():
    assert terms("  hdf5@1.14   zen3 ") == ("hdf5@1.14", "zen3")
    assert terms("") == ()
    for bad in ("a\x00b", "a\nb", "x" * 257, " ".join("w" * 17), "@@ ++ --"):
        with pytest.raises(BadSearch):
            terms(bad)


def test_a_cursor_round_trips_and_garbage_is_refused():
    hit = Hit(-1.2345678901234567e-06, "image", "a/b-c", "sha256:" + "0" * 64)
    assert parse_cursor(cursor(hit)) == (hit.rank, hit.kind, hit.repo, hit.key)
    for bad in ("", "x", "1/thing/a@b", "1/image/a", "1/image/\x00@k", "nanx/image/a@b"):
        with pytest.raises(BadSearch):
            parse_cursor(bad)


async def test_names_are_found_by_their_parts_and_whole(index):
    d, body, cfg = image("amd64", "v3", "np", {TITLE: "py-numpy", TARGET: "zen3"})
    await index.apply([put("hpc/py-numpy", body, cfg, tag="1.26.4"),
                       SpecPut(spec("hdf5", "1.14.3", "x86_64_v3"))])
    img = ("image", "hpc/py-numpy", d)
    sp = ("spack", "spack/cache", spec("hdf5", "1.14.3").hash)
    for words in (["py-numpy"], ["numpy"], ["py"], ["NumPy"], ["1.26"], ["zen3"], ["amd64"],
                  ["hpc/py-numpy"], ["nump*"]):
        assert await found(index, *words) == [img], words
    for words in (["hdf5@1.14"], ["hdf5"], ["hdf5@1.14.3"], ["x86_64_v3"], ["x86_64"],
                  ["v3", "hdf5"], ["+mpi"], ["zlib"], ["gcc"], ["ubuntu22.04"]):
        assert await found(index, *words) == [sp], words
    for words in (["hdf5@1.15"], ["numpy", "hdf5"], ["x86_64_v4"], ["NEAR(numpy"]):
        assert await found(index, *words) == [], words


async def test_documents_follow_tags_deletes_and_specs(index):
    d1, b1, c1 = image("amd64", "", "one")
    d2, b2, c2 = image("arm64", "", "two")
    await index.apply([put("app", b1, c1, tag="stable"), put("app", b2, c2)])
    assert await found(index, "stable") == [("image", "app", d1)]
    await index.apply([TagSet("app", "stable", d2)])  # the tag moves: both documents change
    assert await found(index, "stable") == [("image", "app", d2)]
    await index.apply([TagDeleted("app", "stable")])
    assert await found(index, "stable") == []
    await index.apply([ManifestDeleted("app", d1)])
    assert await found(index, "app") == [("image", "app", d2)]

    old, new = spec("mylib", "1.0"), spec("mylib", "2.0")
    await index.apply([SpecPut(old)])
    await index.apply([SpecsReset("spack/cache", (new,))])
    assert await found(index, "mylib") == [("spack", "spack/cache", new.hash)]
    await index.apply([SpecDeleted("spack/cache", new.hash)])
    assert await found(index, "mylib") == []
    # A rebuild forgets the manifests' documents (the catch-up writes them again), not
    # the specs', which the Spack catalog keeps.
    await index.apply([SpecPut(old)])
    await index.clear()
    assert await found(index) == [("spack", "spack/cache", old.hash)]


async def test_filters(index):
    _d3, v3, c3 = image("amd64", "v3", "v3", {TARGET: "zen3"})
    _darm, arm, carm = image("arm64", "", "arm")
    idx = index_of((v3, {"os": "linux", "architecture": "amd64", "variant": "v3"}, None),
                   (arm, {"os": "linux", "architecture": "arm64"}, None))
    labelled = json.dumps({"architecture": "amd64", "os": "linux",
                           "config": {"Labels": {"org.example.team": "hpc"}}}).encode()
    body = json.dumps(manifest_doc(labelled, [b"l"], annotations={"k": "v=w"})).encode()
    await index.apply([put("multi", v3, c3), put("multi", arm, carm),
                       put("multi", idx, None, "application/vnd.oci.image.index.v1+json",
                           tag="latest"),
                       put("labelled", body, labelled, tag="t"),
                       SpecPut(spec("hdf5", "1.14.3", "zen2")),
                       SpecPut(spec("hdf5", "1.12.1", "x86_64_v3")),
                       SpecPut(spec("hdf5", "1.140", "aarch64"))])
    multi = ("image", "multi", digest_of(idx))
    # The index's children, untagged, are found as the index.
    assert await found(index, "multi") == [multi]
    assert await found(index, arch="arm64", arch_targets=("aarch64",)) == [
        multi, ("spack", "spack/cache", spec("hdf5", "1.140").hash)]
    assert await found(index, targets=("zen3",)) == [multi]
    assert await found(index, os="ubuntu22.04", spack_name="hdf5",
                       spack_version="1.14") == [
        ("spack", "spack/cache", spec("hdf5", "1.14.3").hash)]
    # The index declares its zen3 child as amd64/v3 (x86_64_v3); the child's own config
    # says zen3, and a manifest's own config is what counts.
    assert [k for k, _, _ in await found(index, targets=("zen2", "x86_64_v3"))] == [
        "spack", "spack"]
    assert await found(index, labels=(("org.example.team", "hpc"),)) == [
        ("image", "labelled", digest_of(body))]
    assert await found(index, labels=(("k", "v=w"),)) == [("image", "labelled", digest_of(body))]
    assert await found(index, labels=(("k", "v"),)) == []
    assert await found(index, kind="image", visible=(("labelled",), ())) == [
        ("image", "labelled", digest_of(body))]
    assert await found(index, visible=((), ())) == []
    # Signed: a valid signature as the trust room last verified it (index/writes.py).
    ok = SignatureRow("sha256:" + "5" * 64, 0, "cosign", "", "k", True, "", "")
    bad = SignatureRow("sha256:" + "6" * 64, 0, "cosign", "", "k", False, "bad signature", "")
    await index.apply([SignaturesSeen("multi", digest_of(idx), (ok,)),
                       SignaturesSeen("labelled", digest_of(body), (bad,))])
    assert await found(index, signed=True) == [multi]
    assert await found(index, signed=False) == [("image", "labelled", digest_of(body))]
    _, [details] = await index.search(SearchQuery(signed=True))
    assert details["signed"] is True


async def test_artifacts_and_pages(index):
    _d, b, c = image("amd64", "", "subject")
    art_cfg = b"{}"
    art = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "artifactType": "application/vnd.example.sbom",
                      "config": descriptor("application/vnd.oci.empty.v1+json", art_cfg),
                      "layers": [descriptor("application/json", b"[]")],
                      "subject": descriptor(OCI_MANIFEST, b)}).encode()
    await index.apply([put("app", b, c, tag="v1"), put("app", art, art_cfg)])
    assert await found(index, "sbom") == [("artifact", "app", digest_of(art))]
    await index.apply([put(f"repo{i:02}", *image("amd64", "", f"n{i}")[1:], tag="same")
                       for i in range(7)])
    seen: list[str] = []
    after = None
    while True:
        hits, _ = await index.search(SearchQuery(terms=("same",), after=after, limit=3))
        seen += [h.repo for h in hits]
        if len(hits) < 3:
            break
        after = (hits[-1].rank, hits[-1].kind, hits[-1].repo, hits[-1].key)
    assert sorted(seen) == [f"repo{i:02}" for i in range(7)] and len(set(seen)) == 7


async def test_words_found_everywhere_filter_unranked(index, monkeypatch):
    """Words matching more than RANK_MAX documents are not ranked (bm25 would read
    every match): they filter, the pages come in key order with rank 0, and agree."""
    await index.apply([put(f"repo{i:02}", *image("amd64", "", f"n{i}")[1:], tag="same")
                       for i in range(7)])
    monkeypatch.setattr(search, "RANK_MAX", 3)
    seen: list[tuple[float, str]] = []
    after = None
    while True:
        hits, _ = await index.search(SearchQuery(terms=("same",), after=after, limit=2))
        seen += [(h.rank, h.repo) for h in hits]
        if len(hits) < 2:
            break
        after = (hits[-1].rank, hits[-1].kind, hits[-1].repo, hits[-1].key)
    assert seen == [(0.0, f"repo{i:02}") for i in range(7)]


async def test_hostile_words_never_reach_sqlite_as_syntax(index):
    await index.apply([put("app", *image("amd64", "", "x")[1:], tag="v1")])
    for word in ['"', '""', "'", "AND", "NOT", "a:b", "(", ")", "*a", "a*b", "^", "NEAR",
                 '"x" OR "y"', "\\", "%", "_", "\u202e", "日本", "a" * 256]:
        try:
            await found(index, word)
        except sqlite3.Error as exc:  # pragma: no cover - the failure being tested for
            pytest.fail(f"{word!r}: {exc}")


async def test_a_version_6_index_gets_its_documents_from_the_catch_up(tmp_path):
    """A file from before search (version 6): the catch-up it asks for reads every
    manifest again, labels included, and writes its document; so does a rebuild."""
    reg = build_registry(MemoryDriver())
    digest = await store(reg, "hpc/app", "amd64", "v3", "zen3")
    path = tmp_path / "index.sqlite"
    old = Index(path, describer)
    await old.open()
    await catch_up(reg, old)
    await old.close()
    index = await rewound(path, 6, "DROP TABLE search_fts", "DROP TABLE search_docs",
                          "DROP TABLE scans", "DROP INDEX idx_manifests_digest",
                          "DROP INDEX idx_platforms_digest",
                          "DROP INDEX idx_tags_updated",  # version 9's
                          "ALTER TABLE manifests DROP COLUMN labels")
    try:
        assert index.opened is schema.Opened.MIGRATED and index.dirty
        assert await found(index, "zen3") == []
        await catch_up(reg, index)
        assert await found(index, "zen3") == [("image", "hpc/app", digest)]
        await rebuild(reg, index)
        assert await found(index, "v3") == [("image", "hpc/app", digest)]
    finally:
        await index.close()


async def test_the_names_search_admits_follow_every_writer(index, tmp_path):
    """search_names is kept between calls, and read again after this process's writes
    and after another connection's (another worker's) commit."""
    await index.apply([put("one", *image("amd64", "", "1")[1:], tag="t")])
    assert await index.search_names() == (["one"], [])
    await index.apply([SpecPut(spec("zlib", "1.3"))])
    assert await index.search_names() == (["one"], ["spack/cache"])
    other = sqlite3.connect(tmp_path / "index.sqlite")
    other.execute("INSERT INTO search_docs (kind, repo, key) VALUES ('image', 'two', 'k')")
    other.commit()
    other.close()
    assert await index.search_names() == (["one", "two"], ["spack/cache"])
