"""Scan summaries in the index (index/scans.py, registry/scan/summary.py): each result's
worst vulnerability and counts, on search documents (an index of images showing its
children's), the `severity` and `scanned` filters, the summary the dashboard reads, an
old read never overwriting a newer write, and the catch-up, a reindex and a file from
schema 7 restoring them from the results stored in `_scan/`."""

from __future__ import annotations

import json

from test_index_builds import image, index_of, put, rewound
from test_index_catchup_builds import store

from registry.arch.indexed import describer
from registry.core.areas import ScanArea
from registry.core.factory import build_registry
from registry.core.grammar import Digest
from registry.core.indexing import catch_up, rebuild
from registry.core.search import Search
from registry.index import schema
from registry.index.db import Index
from registry.index.records import ManifestDeleted, ScanForgotten, ScanRow, ScanSeen
from registry.index.search import SearchQuery
from registry.scan import summary
from registry.scan.results import ScanResults
from registry.storage.memory import MemoryDriver

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def vulns(*levels: str) -> list[dict]:
    return [{"id": f"CVE-{i}", "severity": {"level": level}} for i, level in enumerate(levels)]


def result(digest: str, *levels: str, matched: bool = True) -> dict:
    doc = {"digest": digest, "scanned_at": 100.0, "packages": [{}, {}],
           "vulnerabilities": vulns(*levels)}
    return doc | ({"advisories": {"generation": 1}} if matched else {})


def seen(digest: str, *levels: str, at: float = 1.0, matched: bool = True) -> ScanSeen:
    return ScanSeen(summary.row_of(Digest.parse(digest), result(digest, *levels,
                                                                matched=matched), at))


async def severities(index: Index, **filters) -> dict[str, str | None]:
    page = await Search(index).page(SearchQuery(**filters), None)
    return {f"{r['repository']}:{r['tag']}": r["max_severity"] for r in page.results}


async def test_summaries_on_results_filters_and_the_dashboard_read(index):
    d_bad, bad, c_bad = image("amd64", "", "bad")
    d_ok, ok, c_ok = image("arm64", "", "ok")
    d_new, new, c_new = image("amd64", "", "new")
    d_raw, raw, c_raw = image("amd64", "", "raw")
    multi = index_of((bad, {"os": "linux", "architecture": "amd64"}, None),
                     (ok, {"os": "linux", "architecture": "arm64"}, None))
    d_multi = put("multi", multi, None, OCI_INDEX).digest
    await index.apply([put("app", bad, c_bad, tag="bad"), put("app", ok, c_ok, tag="ok"),
                       put("app", new, c_new, tag="new"), put("app", raw, c_raw, tag="raw"),
                       put("multi", bad, c_bad), put("multi", ok, c_ok),
                       put("multi", multi, None, OCI_INDEX, tag="latest")])
    # Before any result: not scanned, the index too.
    assert set((await severities(index)).values()) == {None}
    await index.apply([seen(d_bad, "unknown", "high", "low"), seen(d_ok),
                       seen(d_raw, matched=False), seen(d_multi)])
    got = await severities(index)
    # An index shows its children's worst, not its own (empty) result.
    assert got == {"app:bad": "high", "app:ok": "none", "app:new": None, "app:raw": None,
                   "multi:latest": "high"}
    page = await Search(index).page(SearchQuery(terms=("raw",)), None)
    assert [(r["max_severity"], r["scanned"]) for r in page.results] == [(None, True)]

    # severity=LEVEL: the worst is at least LEVEL; none < unknown < low < ... < critical.
    assert set(await severities(index, severity="high")) == {"app:bad", "multi:latest"}
    assert set(await severities(index, severity="critical")) == set()
    assert set(await severities(index, severity="none")) == {"app:bad", "app:ok",
                                                             "multi:latest"}
    assert set(await severities(index, scanned=False)) == {"app:new"}
    assert set(await severities(index, scanned=True, severity="unknown")) == {
        "app:bad", "multi:latest"}

    search = Search(index)
    assert await search.summary("app", d_bad) == {
        "max_severity": "high", "scanned_at": 100.0,
        "counts": {"unknown": 1, "low": 1, "medium": 0, "high": 1, "critical": 0}}
    assert (await search.summary("multi", d_multi))["counts"]["high"] == 1
    assert await search.summary("app", d_new) is None
    assert await search.summary("elsewhere", d_bad) is None  # not a manifest of that repo

    # A new child result, worse: the index document follows.
    await index.apply([seen(d_ok, "critical", at=2.0)])
    assert (await severities(index, severity="critical")).keys() == {"app:ok",
                                                                     "multi:latest"}
    # A child deleted from the index's repository: the index is its remaining children's.
    await index.apply([ManifestDeleted("multi", d_ok)])
    assert (await severities(index))["multi:latest"] == "high"


async def test_an_older_read_never_overwrites_a_newer_write(index):
    d, body, cfg = image("amd64", "", "x")
    await index.apply([put("app", body, cfg, tag="t"), seen(d, "low", at=10.0)])
    await index.apply([seen(d, "critical", at=5.0)])  # a catch-up's read from before
    assert await severities(index) == {"app:t": "low"}
    await index.apply([ScanForgotten(d, 10.0)])  # a removal older than the row: kept
    assert await severities(index) == {"app:t": "low"}
    await index.apply([ScanForgotten(d, 10.5)])
    assert await severities(index) == {"app:t": None}
    assert await index.scan_stamps() == {}


async def test_catch_up_reindex_and_a_schema_7_file_restore_them_from_the_store(tmp_path):
    driver = MemoryDriver()
    reg = build_registry(driver)
    digest = await store(reg, "hpc/app", "amd64", "v3")
    results = ScanResults(ScanArea(driver).results())
    await results.write(Digest.parse(digest), result(digest, "medium"))
    path = tmp_path / "index.sqlite"

    async def scans(index: Index) -> int:
        return await summary.sync(results, index)

    index = Index(path, describer)
    await index.open()
    try:
        await catch_up(reg, index, rooms=(scans,))
        assert await severities(index) == {"hpc/app:v3": "medium"}
        # Nothing changed: the pass reads no result again.
        assert await scans(index) == 0
        # A result rewritten without an event (another process): read again, by mtime.
        stamp = (await index.scan_stamps())[digest]
        await results.write(Digest.parse(digest), result(digest, "critical"))
        assert (await results.files().__anext__())[1] > stamp
        assert await scans(index) == 1
        assert await severities(index) == {"hpc/app:v3": "critical"}
        stats = await rebuild(reg, index, rooms=(scans,))
        assert stats.rooms == 1 and await severities(index) == {"hpc/app:v3": "critical"}
        # A result removed without an event: its row goes.
        await results.delete(Digest.parse(digest))
        assert await scans(index) == 1 and await severities(index) == {"hpc/app:v3": None}
        await results.write(Digest.parse(digest), result(digest, "low"))
    finally:
        await index.close()

    index = await rewound(path, 7, "DROP TABLE scans", "DROP INDEX idx_search_docs_key",
                          "DROP INDEX idx_manifests_digest", "DROP INDEX idx_platforms_digest",
                          "DROP INDEX idx_tags_updated",  # version 9's
                          "ALTER TABLE search_docs DROP COLUMN severity")
    try:
        assert index.opened is schema.Opened.MIGRATED and index.dirty
        assert await severities(index) == {"hpc/app:v3": None}
        await catch_up(reg, index, rooms=(scans,))
        assert await severities(index) == {"hpc/app:v3": "low"}
        row = json.loads((await index._query("SELECT counts FROM scans"))[0]["counts"])
        assert row == {"low": 1}
    finally:
        await index.close()


def test_a_summary_counts_each_level_and_says_when_it_was_not_matched():
    d = Digest.parse("sha256:" + "1" * 64)
    row = summary.row_of(d, result(str(d), "high", "weird", "none", "high"), 3.0)
    assert row == ScanRow(str(d), "high", {"high": 2, "unknown": 1, "none": 1}, 2, 100.0, 3.0)
    assert summary.row_of(d, result(str(d)), 3.0).max_severity == "none"
    assert summary.row_of(d, result(str(d), "low", matched=False), 3.0).max_severity is None
    assert summary.row_of(d, {"vulnerabilities": "junk", "scanned_at": "x"}, 1.0) == ScanRow(
        str(d), None, {}, 0, 0.0, 1.0)
