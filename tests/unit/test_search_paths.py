"""The cheaper ways index/search.py and core/search.py answer a search give the answers
the plain ways give: ranking only the best matches first (TOP_K), testing each document
for words most documents hold (DENSE), the caller's visible names as a temporary table
(visible_key), and the caller's rights kept per rights key (Search.page)."""

from __future__ import annotations

import pytest
from test_index_builds import image, put
from test_index_search import spec

from registry.core.search import Search
from registry.index import db, search
from registry.index.records import SpecPut
from registry.index.search import SearchQuery

NOTES = "org.opencontainers.image.title"


async def store(index):
    """Images and specs with `hdf5` in different columns and amounts: ranks spread,
    with ties (same-shaped specs), in repositories of three namespaces."""
    events = []
    for i in range(12):
        title = "hdf5 " * (1 + i % 3) + f"tool {i}"
        arch = "arm64" if i % 4 == 0 else "amd64"
        events.append(put(f"{('pub', 'team', 'hidden')[i % 3]}/img{i:02}",
                          *image(arch, "", f"n{i}", annotations={NOTES: title})[1:],
                          tag=f"v{i}"))
    await index.apply(events)
    await index.apply([SpecPut(spec("hdf5", f"1.{i}.0", cache=f"{('pub', 'team')[i % 2]}/c",
                                    target="aarch64" if i % 5 == 0 else "zen3"))
                       for i in range(12)])


async def pages(index, limit: int = 3, **fields) -> list[tuple[float, str, str, str]]:
    """Every page of a search, by its cursor, together."""
    out: list[tuple[float, str, str, str]] = []
    after = None
    while True:
        hits, _ = await index.search(SearchQuery(after=after, limit=limit, **fields))
        out += [(h.rank, h.kind, h.repo, h.key) for h in hits]
        if len(hits) < limit:
            return out
        after = out[-1]


QUERIES = [
    {"terms": ("hdf5",)},
    {"terms": ("hdf5",), "kind": "image"},
    {"terms": ("hdf5",), "arch": "amd64", "arch_targets": ("zen3",)},
    {"terms": ("hdf5",), "arch": "arm64", "arch_targets": ("aarch64",)},  # few pass
    {"terms": ("hdf5",), "visible": (("pub/img00", "team/img01", "pub/img03"), ("pub/c",))},
    {"terms": ("hdf*", "tool")},
]


@pytest.mark.parametrize("fields", QUERIES)
async def test_ranking_the_best_matches_first_gives_the_same_pages(index, monkeypatch,
                                                                   fields):
    await store(index)
    monkeypatch.setattr(search, "TOP_K", 10**6)  # never: every match joined
    whole = await pages(index, **fields)
    assert whole and all(rank < 0 for rank, *_ in whole)
    used = []
    real = search._top

    def spy(*args, **kwargs):
        hits, settled = real(*args, **kwargs)
        used.append(settled)
        return hits, settled

    monkeypatch.setattr(search, "_top", spy)
    for top_k in (1, 2):
        monkeypatch.setattr(search, "TOP_K", top_k)
        assert await pages(index, **fields) == whole
    assert used  # the best matches were tried first


async def test_the_best_matches_settle_a_page_when_enough_pass(index, monkeypatch):
    await store(index)
    monkeypatch.setattr(search, "TOP_K", 2)
    settled = []
    real = search._top
    monkeypatch.setattr(search, "_top", lambda *a, **k: settled.append(real(*a, **k)[1])
                        or real(*a, **k))
    hits, _ = await index.search(SearchQuery(terms=("hdf5",), limit=3))
    assert len(hits) == 3 and settled == [True]


async def test_words_most_documents_hold_are_tested_per_document(index, monkeypatch):
    """Unranked words (more than RANK_MAX matches) found in half the documents or more:
    each document is tested in key order; the pages are those of the match list."""
    await store(index)
    monkeypatch.setattr(search, "RANK_MAX", 2)
    for words in (("hdf5",), ("linux",), ("tool",)):
        monkeypatch.setattr(search, "DENSE", 10**6)  # never: the match list
        listed = await pages(index, terms=words)
        monkeypatch.setattr(search, "DENSE", 1)  # always, however few match
        assert await pages(index, terms=words) == listed
        assert listed and all(rank == 0.0 for rank, *_ in listed)
    monkeypatch.setattr(search, "DENSE", 2)
    assert await index._run(search._dense, index._conn, '"linux"')
    assert not await index._run(search._dense, index._conn, '"arm64"')  # 3 of 24


async def test_visible_names_kept_as_a_table_answer_as_the_list(index, monkeypatch):
    await store(index)
    monkeypatch.setattr(db, "VISIBLE_TABLES", 2)
    some = (("pub/img00", "team/img01"), ("team/c",))
    other = (("hidden/img02",), ())
    for visible in (some, other, ((), ()), some):
        listed = await pages(index, visible=visible)
        assert {r for _, _, r, _ in listed} <= {*visible[0], *visible[1]}
        assert bool(listed) == (visible != ((), ()))
        for key in (("k", visible), ("k", visible)):  # made, then reused
            assert await pages(index, visible=visible, visible_key=key) == listed
            assert await pages(index, terms=("hdf5",), visible=visible, visible_key=key) \
                == await pages(index, terms=("hdf5",), visible=visible)
    assert len(index._visible) == 2  # the least recently used went


async def test_rights_are_asked_once_per_key_and_name(index):
    """A caller's answers are kept under its rights key: a second search asks nothing,
    a repository that appears is asked about alone, and another key (new rules: a
    SIGHUP) asks again."""
    await store(index)
    asked: list[tuple[str, str]] = []

    def may_pull(family: str, name: str) -> bool:
        asked.append((family, name))
        return name.startswith("pub/")

    service = Search(index)
    first = await service.page(SearchQuery(terms=("hdf5",)), may_pull, ("reader", 1))
    assert {r["repository"] for r in first.results} == {"pub/c", "pub/img00", "pub/img03",
                                                        "pub/img06", "pub/img09"}
    assert len(asked) == 14 and len(set(asked)) == 14  # 12 repositories, 2 caches
    again = await service.page(SearchQuery(terms=("hdf5",)), may_pull, ("reader", 1))
    assert again.results == first.results and len(asked) == 14
    await index.apply([put("pub/new", *image("amd64", "", "new",
                                             annotations={NOTES: "hdf5"})[1:], tag="1")])
    grown = await service.page(SearchQuery(terms=("hdf5",)), may_pull, ("reader", 1))
    assert asked[14:] == [("oci", "pub/new")]
    assert "pub/new" in {r["repository"] for r in grown.results}
    await service.page(SearchQuery(terms=("hdf5",)), may_pull, ("reader", 2))
    assert len(asked) == 14 + 1 + 15
    # No key: asked every time, as before.
    await service.page(SearchQuery(terms=("hdf5",)), may_pull)
    assert len(asked) == 14 + 1 + 15 + 15
