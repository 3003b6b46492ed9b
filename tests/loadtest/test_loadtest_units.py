"""Unit tests of the harness pieces that need no server process."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import tomllib
from pathlib import Path

import pytest
from aiohttp import web

from loadtest import client, headload, report, targets, wrk
from loadtest import scenarios as sc
from loadtest.data import ensure_blob_file

WRK_TEXT = """\
Running 1s test @ http://127.0.0.1:5000/v2/r/manifests/latest
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.55ms    2.43ms  34.32ms   84.00%
    Req/Sec     1.19k   100.00     1.30k    70.00%
  3550 requests in 3.00s, 2.58MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   1182.93
Transfer/sec:      0.86MB
"""


def test_parse_wrk_json_line() -> None:
    line = (
        'WRK_JSON {"requests":100,"duration_us":2000000,"bytes":5000,'
        '"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0},'
        '"latency_us":{"p50":10}}'
    )
    out = wrk.parse_output("noise\n" + line + "\n")
    assert out["rps"] == 50 and out["bytes_per_s"] == 2500 and out["seconds"] == 2
    wrk.check(out)


def test_parse_wrk_text_fallback_and_errors() -> None:
    out = wrk.parse_output(WRK_TEXT)
    assert out["requests"] == 3550
    assert out["seconds"] == pytest.approx(3.0)
    assert out["bytes"] == pytest.approx(2.58 * 1024**2)
    assert out["errors"]["read"] == 2 and out["errors"]["timeout"] == 1
    assert out["non_2xx_3xx"] == 5
    with pytest.raises(wrk.WrkError, match="5 error responses"):
        wrk.check(out)
    with pytest.raises(wrk.WrkError):
        wrk.parse_output("garbage")


def test_wrk_scripts_include_common_done(tmp_path: Path) -> None:
    for name in ("manifest_get", "manifest_head", "range", "referrers", "get", "tags_list"):
        text = wrk.script(name, tmp_path).read_text()
        assert "function done(" in text and "WRK_JSON" in text
    assert 'wrk.method = "HEAD"' in wrk.script("manifest_head", tmp_path).read_text()


def test_next_link() -> None:
    assert client.next_link(None) is None
    assert client.next_link('</v2/r/tags/list?n=100&last=t99>; rel="next"') == (
        "/v2/r/tags/list?n=100&last=t99"
    )
    assert client.next_link("<http://h/x?last=a>; rel=next") == "http://h/x?last=a"
    assert client.next_link('</a>; rel="prev"') is None
    assert client.with_digest("/u/1?_state=x", "sha256:ab") == "/u/1?_state=x&digest=sha256:ab"
    assert client.with_digest("/u/1", "sha256:ab") == "/u/1?digest=sha256:ab"


def test_ours_config(tmp_path: Path) -> None:
    cfg = tomllib.loads(targets.ours_config_text(None, 4))
    assert cfg == {"server": {"log_level": "error", "workers": 4}}
    base = tmp_path / "base.toml"
    base.write_text('[server]\nworkers = 2\nlog_level = "info"\n\n[storage]\nfsync = true\n')
    text = targets.ours_config_text(base, 3, {"storage": {"fsync": "false"}, "x": {"y": '"z"'}})
    cfg = tomllib.loads(text)
    assert cfg["server"] == {"workers": 3, "log_level": "info"}  # the base file's level kept
    assert cfg["storage"] == {"fsync": False}
    assert cfg["x"] == {"y": "z"}


def test_ours_spec_docker_registry_stand_in() -> None:
    spec = targets.ours_spec("docker-registry")
    assert spec.flavor == "docker-registry" and spec.kind == "registry"
    spec = targets.ours_spec(None, workers=2)
    assert spec.flavor == "ours" and "{listen}" in spec.argv
    server = targets.prepare(spec, None)
    try:
        assert "--config" in server.cmd and f"127.0.0.1:{server.port}" in server.cmd
        assert "workers = 2" in (server.tmp_dir / "registry.toml").read_text()
    finally:
        server.stop()
    assert not server.tmp_dir.exists()


def test_nginx_static_files_and_digest_map() -> None:
    spec = targets.TargetSpec("nginx", "nginx", binary="nginx", workers=1)
    server = targets.prepare(spec, None)
    try:
        assert "worker_processes 1;" in (server.tmp_dir / "nginx.conf").read_text()
        sc.seed_static(server, {"app"}, sc.Files())
        manifest = server.tmp_dir / "www/v2" / sc.REPO_APP / "manifests" / sc.TAG
        digest = "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()
        assert (manifest.parent / digest).read_bytes() == manifest.read_bytes()
        lines = (server.tmp_dir / "digests.map").read_text().splitlines()
        assert f'"/v2/{sc.REPO_APP}/manifests/{sc.TAG}" "{digest}";' in lines
        with pytest.raises(ValueError):
            server.add_static("/v2/../../x", b"")
    finally:
        server.stop()


def test_baseline_spec_runs_from_its_checkout(tmp_path: Path) -> None:
    ours = targets.ours_spec(None, workers=2, settings={"storage": {"fsync": "false"}})
    base = targets.baseline_spec(ours, tmp_path)
    assert (base.name, base.flavor, base.src) == ("baseline", "ours", tmp_path.resolve())
    assert (base.argv, base.workers, base.settings) == (ours.argv, ours.workers, ours.settings)
    with pytest.raises(ValueError):
        targets.baseline_spec(targets.ours_spec("docker-registry"), tmp_path)


def test_replica_index_reader_and_copy(tmp_path: Path) -> None:
    from loadtest import replicas

    src = tmp_path / "a.sqlite"
    db = sqlite3.connect(src)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE tags (repo TEXT, tag TEXT, digest TEXT, PRIMARY KEY (repo, tag))")
    rows = [("r", f"t{i}", "d") for i in range(5)] + [("r", "u0-1", "d"), ("s", "u0-2", "d")]
    db.executemany("INSERT INTO tags VALUES (?, ?, ?)", rows)
    db.commit()
    dest = tmp_path / "b" / "index.sqlite"
    replicas.copy_index(src, dest)  # while the source is open, as A's is
    db.close()
    reader = replicas.IndexReader(dest)
    try:
        assert reader.count("r") == 6 and reader.count("r", "u0-") == 1
        assert reader.count("r", "u1-") == 0
    finally:
        reader.close()
    assert replicas.IndexReader(tmp_path / "missing").count("r") == 0
    log = tmp_path / "passes.jsonl"
    log.write_text('{"start": 1, "end": 2, "stats": {"repositories": 1, "added": 0}}\n{"sta')
    (rec,) = replicas.read_passes(log)
    assert replicas._changes(rec) == 0 and replicas._changes({"stats": "?"}) == -1


def test_replica_spec_on_s3(tmp_path: Path) -> None:
    from loadtest import replicas

    ours = targets.ours_spec(None, settings={"storage": {"fsync": "false"}})
    spec = replicas.replica_spec(ours, "ours-B", "http://127.0.0.1:1", "p", 1)
    server = targets.prepare(spec, tmp_path)
    try:
        cfg = tomllib.loads((server.tmp_dir / "registry.toml").read_text())
        assert cfg["storage"]["driver"] == "s3" and cfg["storage"]["fsync"] is False
        assert cfg["index"]["sync_interval"] == 1
        assert replicas.index_path(server) == server.tmp_dir / "data" / "index.sqlite"
    finally:
        server.stop()
    assert ours.settings == {"storage": {"fsync": "false"}}  # not changed in place


def test_blob_file_cached(tmp_path: Path) -> None:
    blob = ensure_blob_file(tmp_path, "t", 3 * (1 << 20) + 5, seed=9)
    data = blob.path.read_bytes()
    assert len(data) == blob.size
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    mtime = blob.path.stat().st_mtime_ns
    again = ensure_blob_file(tmp_path, "t", blob.size, seed=9)
    assert again == blob and blob.path.stat().st_mtime_ns == mtime  # not regenerated


def test_select() -> None:
    assert [s.name for s in sc.select(["all"])] == [s.name for s in sc.SCENARIOS]
    default = [s.name for s in sc.select(None)]
    assert "manifest-get" in default and not any(n.startswith("big-repo") for n in default)
    assert [s.name for s in sc.select(["push-small", "manifest-get"])] == [
        "manifest-get",
        "push-small",
    ]
    with pytest.raises(KeyError):
        sc.select(["nope"])
    group = [s.name for s in sc.select(["big-repo"])]
    assert group[:3] == ["big-repo-list", "big-repo-page", "big-repo-delete"]
    assert [s.name for s in sc.select(["big-repo-page", "manifest-get"])] == [
        "manifest-get",
        "big-repo-page",
    ]


def test_big_repo_manifests_distinct_and_tags_sorted() -> None:
    bodies = {sc.big_manifest(i) for i in range(50)}
    assert len(bodies) == 50
    tags = [sc.big_tag(i) for i in range(0, 50_000, 997)]
    assert tags == sorted(tags)


def _entry(value: float, rss: float | None = None) -> dict:
    metrics = [sc.metric("gbps", "GB/s", value, "GB/s")]
    if rss is not None:
        metrics.append(sc.metric("rss", "peak RSS MiB", rss, "MiB", "lower"))
    return {"status": "ok", "metrics": metrics}


def test_summarize_medians_ratios_and_table(tmp_path: Path) -> None:
    runs = []
    for rep, (o, t, n) in enumerate([(1.0, 2.0, 4.0), (3.0, 2.0, 4.0), (2.0, 8.0, 4.0)]):
        runs.append({"rep": rep, "target": "ours", "scenarios": {"b": _entry(o, 10)}})
        runs.append({"rep": rep, "target": "theirs", "scenarios": {"b": _entry(t, 20)}})
        runs.append({"rep": rep, "target": "nginx", "scenarios": {"b": _entry(n, 5)}})
        runs[-3]["scenarios"]["r"] = {"status": "ok", "metrics": [sc.metric("x", "x/s", 9, "x/s")]}
        runs[-2]["scenarios"]["r"] = {"status": "unsupported", "reason": "404"}
    rows = report.summarize({"runs": runs}, ["b", "r"])
    gb = next(r for r in rows if r["metric"] == "gbps")
    assert gb["median"] == {"ours": 2.0, "theirs": 2.0, "nginx": 4.0}
    assert gb["ratio"] == {"ours/theirs": 1.0, "ours/nginx": 0.5}
    rss = next(r for r in rows if r["metric"] == "rss")
    assert rss["better"] == "lower" and rss["ratio"]["ours/theirs"] == 0.5
    ref = next(r for r in rows if r["scenario"] == "r")
    assert ref["status"]["theirs"] == "unsupported" and ref["ratio"] == {}
    table = report.format_table(rows, 3, {"theirs": "docker-registry"})
    assert "unsupported" in table and "docker-registry" in table
    assert "(lower is better)" in table
    err = report.write_chart(tmp_path / "c.png", rows, "t")
    assert err is None or "matplotlib" in err
    report.write_json(tmp_path / "r.json", {"rows": rows})
    assert (tmp_path / "r.json").read_text().startswith("{")


async def test_headload_counts_head_responses(aiohttp_server) -> None:
    async def head(request: web.Request) -> web.Response:
        code = 200 if request.headers.get("Accept") == "x/y" else 404
        return web.Response(status=code, body=b"0123456789")

    app = web.Application()
    app.router.add_route("HEAD", "/m", head)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.port}/m"
    out = await headload.run(url, connections=2, duration=0.3, headers=["Accept: x/y"])
    assert out["requests"] > 0 and out["errors"]["status"] == 0
    out = await headload.run(url, connections=2, duration=0.3, headers=[])
    assert out["errors"]["status"] == out["requests"] > 0


def _seed_tags(registry, count: int) -> str:
    import hashlib
    import json

    import requests

    repo = registry.repo("taglist")
    config = b"{}"
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    requests.post(f"{registry.url}/v2/{repo}/blobs/uploads/?digest={digest}", data=config)
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": digest, "size": 2}, "layers": []}
    for i in range(count):
        r = requests.put(f"{registry.url}/v2/{repo}/manifests/t{i}", data=json.dumps(doc),
                         headers={"Content-Type": doc["mediaType"]})
        assert r.status_code == 201
    return repo


@pytest.mark.parametrize(("first", "pages"), [("?n=2", 3), ("", 1)])
async def test_wrk_tag_listing_follows_links_and_counts_tags(registry, tmp_path, first,
                                                             pages) -> None:
    """lua/tags_list.lua follows Link pages to the end and counts every tag; a
    listing with a different count is reported as bad, not timed."""
    repo = await asyncio.to_thread(_seed_tags, registry, 5)
    script = wrk.script("tags_list", tmp_path)
    path = f"/v2/{repo}/tags/list{first}"
    out = await wrk.run(registry.url, script, connections=1, duration=1, threads=1,
                        args=[path, "5"])
    assert out["listings"] > 0 and out["bad_listings"] == 0 and out["bad_status"] == 0
    assert out["pages"] == out["listings"] * pages
    out = await wrk.run(registry.url, script, connections=1, duration=1, threads=1,
                        args=[path, "4"])
    assert out["listings"] == 0 and out["bad_listings"] > 0


def test_search_bench_seeds_and_measures_every_shape(capsys, tmp_path) -> None:
    """`python -m loadtest search` at a toy size: every shape answers, the counts add up;
    an index file given again is measured as it is (an A/B of two checkouts on one
    seeded file), not seeded twice."""
    import json

    from loadtest import search_bench

    args = ["--manifests", "40", "--specs", "40", "--rounds", "1", "-n", "5",
            "--index", str(tmp_path / "index.sqlite")]
    assert search_bench.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["documents"] == 80 and set(out["queries"]) == set(search_bench.shapes())
    assert out["queries"]["word (q=hdf5)"]["results"] >= 1
    assert all(q["median_ms"] >= 0 for q in out["queries"].values())
    assert search_bench.main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["documents"] == 80 and again["seed_s"] == {} and again["specs"] is None


def test_search_fresh_measures_push_to_searchable(capsys, tmp_path) -> None:
    """`python -m loadtest search-fresh` at a toy size: a real server, each push found
    by its fresh word (the scenario raises when a push never becomes searchable)."""
    import json

    from loadtest import search_fresh

    assert search_fresh.main(["--pushes", "2", "--data", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["push_to_searchable_s"]["n"] == 2
    assert 0 <= out["push_to_searchable_s"]["median"] <= out["push_to_searchable_s"]["max"]
