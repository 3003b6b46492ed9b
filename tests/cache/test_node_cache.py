"""A node cache process in front of an origin registry process (both ours), over HTTP:
coalescing (one upstream GET for 32 concurrent clients), ranges while the blob
downloads, faults of the upstream (corrupt bytes, a connection cut) never served as
a whole body nor cached, clients that leave, tags revalidated after their TTL and
served stale when the origin is gone, pushes refused, and skopeo pulling through it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from api.helpers import assert_error, call, push_blob, push_image
from cache_helpers import blob_file, settled_gets, stored, upstream_gets
from harness import child_env, wait_for
from prometheus_client.parser import text_string_to_metric_families
from tlsutil import make_cert

MiB = 1 << 20


def get(url: str, **kw) -> requests.Response:
    kw.setdefault("timeout", 60)
    return requests.get(url, **kw)


def pull(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes | None]:
    """(status, body), or (status, None) when the connection broke before the body
    was whole (requests refuses a body shorter than its Content-Length)."""
    try:
        r = get(url, headers=headers or {})
        return r.status_code, r.content
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        return 200, None


def test_32_clients_share_one_upstream_get(origin, start_cache):
    repo = "fanout/app"
    data = os.urandom(20 * MiB)
    digest = push_blob(origin, repo, data)
    cache = start_cache(origin.url)
    url = f"{cache.url}/v2/{repo}/blobs/{digest}"

    with ThreadPoolExecutor(36) as pool:
        whole = [pool.submit(pull, url) for _ in range(32)]
        ranged = [pool.submit(pull, url, {"Range": f"bytes={n * MiB}-{n * MiB + MiB - 1}"})
                  for n in (0, 7, 19)]
        results = [f.result() for f in whole]
        parts = [f.result() for f in ranged]

    expected = hashlib.sha256(data).hexdigest()
    assert all(status == 200 for status, _ in results)
    assert {hashlib.sha256(body).hexdigest() for _, body in results} == {expected}
    for (status, body), n in zip(parts, (0, 7, 19), strict=True):
        assert status == 206 and body == data[n * MiB:(n + 1) * MiB]
    assert settled_gets(origin, f"/v2/{repo}/blobs/{digest}") == 1
    # Stored and linked: later pulls stay local; of another repository too, once the
    # upstream says (a HEAD, no bytes) that it holds the blob as well...
    assert stored(cache, digest) == data
    assert get(url).content == data
    r = requests.post(f"{origin.url}/v2/other/repo/blobs/uploads/?mount={digest}&from={repo}")
    assert r.status_code == 201, r.text
    assert get(f"{cache.url}/v2/other/repo/blobs/{digest}").content == data
    assert upstream_gets(origin, f"/v2/{repo}/blobs/{digest}") == 1
    assert upstream_gets(origin, f"/v2/other/repo/blobs/{digest}") == 0
    # ...and none where the upstream does not serve it: a digest is no right to a blob.
    assert get(f"{cache.url}/v2/nowhere/repo/blobs/{digest}").status_code == 404


def test_workers_of_one_cache_share_one_upstream_get(origin, start_cache):
    """`[server] workers = 4`: the clients' connections land on every worker, and the
    node still sends the origin one GET; the workers that did not fetch follow the
    file the fetching one writes."""
    repo = "fanout/workers"
    data = os.urandom(24 * MiB)
    digest = push_blob(origin, repo, data)
    cache = start_cache(origin.url, extra="[server]\nworkers = 4\n")
    url = f"{cache.url}/v2/{repo}/blobs/{digest}"
    with ThreadPoolExecutor(48) as pool:
        results = list(pool.map(lambda _: pull(url), range(48)))
    expected = hashlib.sha256(data).hexdigest()
    assert [status for status, _ in results] == [200] * 48
    assert {hashlib.sha256(body).hexdigest() for _, body in results} == {expected}
    assert settled_gets(origin, f"/v2/{repo}/blobs/{digest}") == 1
    assert stored(cache, digest) == data
    # Another repository's name for it, on whichever worker: linked, not fetched,
    # where the upstream holds it; nowhere else.
    r = requests.post(f"{origin.url}/v2/other/repo/blobs/uploads/?mount={digest}&from={repo}")
    assert r.status_code == 201, r.text
    assert get(f"{cache.url}/v2/other/repo/blobs/{digest}").content == data
    assert upstream_gets(origin, f"/v2/{repo}/blobs/{digest}") == 1
    assert upstream_gets(origin, f"/v2/other/repo/blobs/{digest}") == 0
    assert get(f"{cache.url}/v2/nowhere/repo/blobs/{digest}").status_code == 404


def test_range_and_head_while_the_blob_downloads(fake_upstream, start_cache):
    fake_upstream.delay = 0.02  # 8 MiB in about 0.6 s
    data = os.urandom(8 * MiB)
    digest = fake_upstream.add(data)
    cache = start_cache(fake_upstream.url)
    url = f"{cache.url}/v2/slow/app/blobs/{digest}"
    first = get(url, stream=True)
    assert first.status_code == 200
    head = first.raw.read(MiB)  # the download has begun, and is far from done
    assert not blob_file(cache, digest).exists()
    r = get(url, headers={"Range": "bytes=6291456-"})
    assert r.status_code == 206 and r.content == data[6 * MiB:]
    h = requests.head(url, timeout=10)
    assert h.status_code == 200 and h.headers["Content-Length"] == str(len(data))
    assert head + first.raw.read() == data
    assert fake_upstream.blob_gets(digest) == 1


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
def test_upstream_faults_abort_every_client_and_cache_nothing(fake_upstream, start_cache,
                                                              fault):
    data = os.urandom(6 * MiB)
    digest = fake_upstream.add(data)
    setattr(fake_upstream, fault, True)
    fake_upstream.delay = 0.01
    cache = start_cache(fake_upstream.url)
    url = f"{cache.url}/v2/bad/app/blobs/{digest}"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: pull(url), range(8)))
    assert all(status == 200 and body is None for status, body in results), \
        [(s, len(b) if b else b) for s, b in results]  # never a short 200 taken as whole
    assert fake_upstream.blob_gets(digest) == 1
    assert not blob_file(cache, digest).exists()
    def left() -> list[str]:
        return [p.name for p in (cache.cache_dir / "_tmp").iterdir()
                if not p.name.startswith("keep-")]  # the counters stay

    # The fetch cleans up after its clients got their error: poll, not assume when.
    assert wait_for(left, lambda names: names == []) == []  # the scratch files are gone
    # The next request tries again, and the fixed upstream is cached.
    setattr(fake_upstream, fault, False)
    assert get(url).content == data
    assert fake_upstream.blob_gets(digest) == 2
    assert stored(cache, digest) == data


def test_a_client_leaving_does_not_stop_the_fetch(fake_upstream, start_cache):
    fake_upstream.delay = 0.01
    data = os.urandom(8 * MiB)
    digest = fake_upstream.add(data)
    cache = start_cache(fake_upstream.url)
    url = f"{cache.url}/v2/leave/app/blobs/{digest}"
    quitter = get(url, stream=True)
    quitter.raw.read(256 << 10)
    with ThreadPoolExecutor(1) as pool:
        stayer = pool.submit(pull, url)
        quitter.close()  # goes away mid-fetch
        assert stayer.result() == (200, data)
    assert fake_upstream.blob_gets(digest) == 1
    assert stored(cache, digest) == data


def test_unknown_blob_is_the_upstreams_404(fake_upstream, start_cache):
    cache = start_cache(fake_upstream.url)
    missing = "sha256:" + "1" * 64
    r = call(cache, "GET", f"/v2/a/blobs/{missing}")
    assert_error(r, 404, "BLOB_UNKNOWN")


def _manifest_digest(cache, repo: str, ref: str) -> requests.Response:
    return call(cache, "GET", f"/v2/{repo}/manifests/{ref}")


def test_tags_follow_upstream_after_ttl_and_go_stale_without_it(origin, start_cache):
    repo = "ttl/app"
    first = push_image(origin, repo, "v1")
    cache = start_cache(origin.url, tag_ttl=1)
    r = _manifest_digest(cache, repo, "v1")
    assert r.status_code == 200 and r.content == first.body and "Warning" not in r.headers
    second = push_image(origin, repo, "v1")  # retagged upstream
    assert _manifest_digest(cache, repo, "v1").content == first.body  # within the TTL
    # Once the TTL has run out the cache asks upstream again: poll for the new digest.
    r = wait_for(lambda: _manifest_digest(cache, repo, "v1"),
                 lambda r: r.headers.get("Docker-Content-Digest") == second.digest)
    assert r.headers["Docker-Content-Digest"] == second.digest and r.content == second.body
    # The tag list is the upstream's.
    assert call(cache, "GET", f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]

    origin.stop()
    # Past the TTL, with upstream gone, the cache answers from its store with a Warning.
    r = wait_for(lambda: _manifest_digest(cache, repo, "v1"), lambda r: "Warning" in r.headers)
    assert r.status_code == 200 and r.content == second.body
    assert r.headers["Warning"].startswith("110 ")
    head = call(cache, "HEAD", f"/v2/{repo}/manifests/v1")
    assert head.status_code == 200 and "Warning" in head.headers
    assert "stale" in cache.log()
    # By digest, stored manifests need no upstream; unknown ones get a clean 503.
    assert _manifest_digest(cache, repo, first.digest).content == first.body
    r = _manifest_digest(cache, repo, "never-pulled")
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "Retry-After" in r.headers


def test_pushes_and_deletes_are_refused(origin, start_cache):
    repo = "ro/app"
    pushed = push_image(origin, repo, "v1")
    cache = start_cache(origin.url)
    for method, path in [("POST", f"/v2/{repo}/blobs/uploads/"),
                         ("DELETE", f"/v2/{repo}/manifests/{pushed.digest}"),
                         ("DELETE", f"/v2/{repo}/manifests/v1")]:
        doc = assert_error(call(cache, method, path), 405, "UNSUPPORTED")
        assert origin.url in doc["errors"][0]["message"]
    r = call(cache, "PUT", f"/v2/{repo}/manifests/v2", data=pushed.body,
             headers={"Content-Type": pushed.media_type})
    assert_error(r, 405, "UNSUPPORTED")
    assert call(origin, "GET", f"/v2/{repo}/manifests/v1").status_code == 200


def test_skopeo_copies_through_the_cache(origin, start_cache, tmp_path):
    repo = "skopeo/app"
    pushed = push_image(origin, repo, "v1", layers=3)
    cache = start_cache(origin.url)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    out = tmp_path / "layout"
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        ["skopeo", "--policy", str(policy), "copy", "--src-tls-verify=false",
         "--preserve-digests",
         f"docker://{cache.host}/{repo}:v1", f"oci:{out}:v1"],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed.digest
    manifest = json.loads(pushed.body)
    for desc in [manifest["config"], *manifest["layers"]]:
        alg, hex_ = desc["digest"].split(":")
        stored = (out / "blobs" / alg / hex_).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == hex_
        assert settled_gets(origin, f"/v2/{repo}/blobs/{desc['digest']}") == 1


def test_https_upstream_with_a_ca_bundle(start_registry, start_cache, tmp_path):
    cert, key = make_cert(tmp_path)
    origin = start_registry(config=f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n',
                            scheme="https", verify=str(cert))
    data = os.urandom(3 * MiB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(f"{origin.url}/v2/tls/app/blobs/uploads/?digest={digest}", data=data,
                      verify=str(cert), timeout=30)
    assert r.status_code == 201, r.text
    # Without the CA the origin's certificate is refused: a clean 503, not a 500.
    untrusted = start_cache(origin.url)
    r = call(untrusted, "GET", f"/v2/tls/app/blobs/{digest}")
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
    cache = start_cache(origin.url, extra=f'ca_bundle = "{cert}"\n')
    assert get(f"{cache.url}/v2/tls/app/blobs/{digest}").content == data


def cache_stats(cache) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "registry", "cache", "stats", "--json",
         "--config", str(cache.cache_dir.parent / "registry.toml")],
        capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cache_stats_count_hits_misses_and_bytes(origin, start_cache):
    repo = "stats/app"
    data = os.urandom(4 * MiB)
    digest = push_blob(origin, repo, data)
    cache = start_cache(origin.url)
    url = f"{cache.url}/v2/{repo}/blobs/{digest}"
    assert pull(url)[1] == data
    with ThreadPoolExecutor(8) as pool:
        assert all(body == data for _, body in pool.map(lambda _: pull(url), range(8)))
    assert get(url, headers={"Range": "bytes=0-99"}).status_code == 206
    # Counters reach the file every 5 s; nine whole pulls and one range.
    want = {"misses": 1, "bytes_upstream": len(data), "fetch_errors": 0,
            "bytes_served": 9 * len(data) + 100}
    stats = wait_for(lambda: cache_stats(cache),
                     lambda got: all(got[k] == v for k, v in want.items()), deadline=20)
    assert {k: stats[k] for k in want} == want, stats
    assert stats["hits"] + stats["coalesced"] == 9
    assert stats["blobs_held"] == 1 and stats["bytes_held"] == len(data)
    assert stats["processes_counting"] == 1
    # /metrics shows the same counters, this process's live.
    samples = {s.name: s.value for family in
               text_string_to_metric_families(get(f"{cache.url}/metrics").text)
               for s in family.samples}
    assert samples["registry_cache_misses_total"] == 1
    assert samples["registry_cache_upstream_bytes_total"] == len(data)
    assert samples["registry_cache_served_bytes_total"] == 9 * len(data) + 100
    assert samples["registry_cache_held_bytes"] == len(data)
    assert samples["process_resident_memory_bytes"] > 0
    cache.stop()  # the last counts are written at shutdown and kept
    after = cache_stats(cache)
    assert after["processes_counting"] == 0
    assert {k: after[k] for k in want} == want


def test_eviction_under_a_small_cap_spares_what_is_being_read(origin, start_cache):
    """The cap holds the 48 MiB blob a slow client is reading and two 4 MiB ones:
    pulling three small ones must evict, and takes the oldest that nobody reads
    (not the older blob still being sent, far beyond the socket buffers)."""
    repo = "evict/app"
    blobs = [os.urandom(48 * MiB), *(os.urandom(4 * MiB) for _ in range(3))]
    digests = [push_blob(origin, repo, b) for b in blobs]
    cache = start_cache(origin.url, extra=f"max_bytes = {57 * MiB}\n")
    slow = requests.get(f"{cache.url}/v2/{repo}/blobs/{digests[0]}", stream=True, timeout=60)
    assert slow.status_code == 200
    got = bytearray(slow.raw.read(MiB))  # a client that reads a little, then stalls
    assert stored(cache, digests[0])  # fetched whole (the cache reads on), still being sent
    for digest, data in zip(digests[1:], blobs[1:], strict=True):
        assert get(f"{cache.url}/v2/{repo}/blobs/{digest}").content == data
        # Stored (and so ranked by last use) a moment after the last byte went out:
        # wait, so the order of use is the order of the requests.
        assert stored(cache, digest) == data
    # The oldest blob, but pinned by its reader: the next oldest went instead (the
    # cap may be enforced just after the newest blob is stored, so wait for it).
    assert wait_for(lambda: blob_file(cache, digests[1]).exists(), lambda e: not e,
                    deadline=10) is False
    assert blob_file(cache, digests[0]).exists()
    assert blob_file(cache, digests[2]).exists() and blob_file(cache, digests[3]).exists()
    got += slow.raw.read()
    assert bytes(got) == blobs[0]
    held = sum(p.stat().st_size for p in (cache.cache_dir / "blobs").rglob("*") if p.is_file())
    assert held <= 57 * MiB
    assert "evicted" in cache.log()


def test_a_pulled_manifest_starts_its_layers(origin, start_cache):
    """A runtime pulls the manifest, then the layers in turn: the cache starts them all
    at the manifest, so the later layers are on their way (or here) when asked for."""
    repo = "prefetch/app"
    pushed = push_image(origin, repo, "v1", layers=3)
    manifest = json.loads(pushed.body)
    blobs = [manifest["config"], *manifest["layers"]]
    cache = start_cache(origin.url)
    assert get(f"{cache.url}/v2/{repo}/manifests/v1",
               headers={"Accept": pushed.media_type}).status_code == 200
    for desc in blobs:  # nobody asked for them
        assert len(stored(cache, desc["digest"])) == desc["size"]
        assert settled_gets(origin, f"/v2/{repo}/blobs/{desc['digest']}") == 1
    for desc in blobs:  # and asking costs the origin nothing more
        assert get(f"{cache.url}/v2/{repo}/blobs/{desc['digest']}").status_code == 200
        assert upstream_gets(origin, f"/v2/{repo}/blobs/{desc['digest']}") == 1
    off = start_cache(origin.url, extra="prefetch = false\n")
    assert get(f"{off.url}/v2/{repo}/manifests/v1",
               headers={"Accept": pushed.media_type}).status_code == 200
    time.sleep(1)
    assert not blob_file(off, blobs[1]["digest"]).exists()
