"""Two registry processes on one bucket behave as one registry.

Nothing but the store is shared: each process has its own data dir (index).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import requests
from harness import poll
from pushing import digest_of, pull_image, push_blob, push_image

MiB = 1 << 20


def test_push_through_a_pull_through_b(start_registry, s3_env) -> None:
    a = start_registry(env=s3_env())
    b = start_registry(env=s3_env())
    repo = a.repo("replica")
    layers = [os.urandom(3 * MiB + 17), os.urandom(100)]
    pushed = push_image(a.url, repo, "v1", layers).digest

    got, blobs = pull_image(b.url, repo, "v1")
    assert got == pushed
    assert blobs[1:] == layers
    r = requests.get(f"{b.url}/v2/{repo}/blobs/{digest_of(layers[0])}",
                     headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert r.status_code == 206
    assert r.content == layers[0][1000:2000]
    r = requests.head(f"{b.url}/v2/{repo}/blobs/{digest_of(layers[0])}", timeout=30)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(layers[0])
    assert requests.get(f"{b.url}/v2/{repo}/tags/list", timeout=30).json()["tags"] == ["v1"]
    assert repo in requests.get(f"{b.url}/v2/_catalog", timeout=30).json()["repositories"]


def test_chunked_upload_begun_on_a_finished_on_b(start_registry, s3_env) -> None:
    a = start_registry(env=s3_env())
    b = start_registry(env=s3_env())
    repo = a.repo("chunked")
    data = os.urandom(7 * MiB + 5)
    cuts = [0, 6 * MiB, 6 * MiB + 1024, 7 * MiB, len(data)]
    r = requests.post(f"{a.url}/v2/{repo}/blobs/uploads/", timeout=30)
    assert r.status_code == 202
    loc = r.headers["Location"]
    replicas = [a, b, a, b]
    for reg, lo, hi in zip(replicas[:-1], cuts, cuts[1:-1], strict=False):
        r = requests.patch(f"{reg.url}{loc}", data=data[lo:hi], timeout=60, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{lo}-{hi - 1}"})
        assert r.status_code == 202, r.text
        assert r.headers["Range"] == f"0-{hi - 1}"
        # The other replica sees the same offset straight away.
        other = b if reg is a else a
        status = requests.get(f"{other.url}{loc}", timeout=30)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{hi - 1}"
    r = requests.put(f"{b.url}{loc}", params={"digest": digest_of(data)}, timeout=60,
                     data=data[cuts[-2]:], headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    got = requests.get(f"{a.url}/v2/{repo}/blobs/{digest_of(data)}", timeout=60)
    assert got.status_code == 200 and got.content == data
    # The finished session is gone everywhere.
    assert requests.get(f"{a.url}{loc}", timeout=30).status_code == 404


def test_a_wrong_digest_publishes_nothing(start_registry, s3_env) -> None:
    a = start_registry(env=s3_env())
    repo = a.repo("baddigest")
    data = os.urandom(MiB)
    wrong = digest_of(b"something else")
    r = requests.post(f"{a.url}/v2/{repo}/blobs/uploads/", timeout=30)
    r = requests.put(f"{a.url}{r.headers['Location']}", params={"digest": wrong}, data=data,
                     timeout=30, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 400
    for d in (wrong, digest_of(data)):
        assert requests.head(f"{a.url}/v2/{repo}/blobs/{d}", timeout=30).status_code == 404


def test_tag_moved_on_a_is_seen_on_b(start_registry, s3_env) -> None:
    a = start_registry(env=s3_env())
    b = start_registry(env=s3_env())
    repo = a.repo("tags")
    layer = os.urandom(1000)
    first = push_image(a.url, repo, "latest", [layer], note="one").digest
    assert pull_image(b.url, repo, "latest")[0] == first
    second = push_image(a.url, repo, "latest", [layer], note="two").digest
    assert second != first
    # No waiting: B answers from the store.
    assert pull_image(b.url, repo, "latest")[0] == second
    assert requests.delete(f"{a.url}/v2/{repo}/manifests/latest", timeout=30).status_code == 202
    r = requests.get(f"{b.url}/v2/{repo}/manifests/latest", timeout=30,
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 404


def _tags(url: str, repo: str, query: str = "") -> list[str]:
    r = requests.get(f"{url}/v2/{repo}/tags/list{query}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["tags"]


def test_tag_cache_ttl_bounds_staleness_of_tags_and_pages(start_registry, s3_env) -> None:
    """With `tag_cache_ms`, a replica may answer from memory, but never with anything
    older than the TTL: also a tag page rendered late from a list read early."""
    ttl = 3.0
    a = start_registry(env=s3_env())
    b = start_registry(env=s3_env(storage_tag_cache_ms=str(int(ttl * 1000))))
    repo = a.repo("ttl")
    layer = os.urandom(1000)
    for attempt in range(3):
        first = push_image(a.url, repo, f"a{attempt}", [layer], note="one").digest
        push_image(a.url, repo, f"c{attempt}", [layer], note="one")
        assert pull_image(b.url, repo, f"a{attempt}")[0] == first
        _tags(b.url, repo, "?n=1")  # B caches the list now...
        t0 = time.monotonic()
        time.sleep(ttl / 2)
        # ...and renders this page from that cached list, half a TTL later.
        page = _tags(b.url, repo, f"?n=1&last=a{attempt}")
        if time.monotonic() - t0 > ttl * 0.9:
            continue  # too slow to be sure the page came from the cached list: again
        assert page == [f"c{attempt}"]
        push_image(a.url, repo, f"b{attempt}", [layer], note="two")
        second = push_image(a.url, repo, f"a{attempt}", [layer], note="two").digest
        # Within the TTL B may still answer the old state (not asserted: timing).
        time.sleep(max(0.0, t0 + ttl + 0.3 - time.monotonic()))
        # A TTL after the list was read, everything derived from it is gone too.
        assert _tags(b.url, repo, f"?n=1&last=a{attempt}") == [f"b{attempt}"]
        assert f"b{attempt}" in _tags(b.url, repo)
        assert pull_image(b.url, repo, f"a{attempt}")[0] == second
        return
    raise AssertionError("three attempts were each too slow to exercise the tag cache")


def test_redirect_to_presigned_url(start_registry, s3_env) -> None:
    reg = start_registry(env=s3_env(storage_redirect="true"))
    repo = reg.repo("redirect")
    data = os.urandom(300_000)
    d = push_blob(reg.url, repo, data)
    r = requests.get(f"{reg.url}/v2/{repo}/blobs/{d}", allow_redirects=False, timeout=30)
    assert r.status_code == 307
    assert r.headers["Docker-Content-Digest"] == d
    direct = requests.get(r.headers["Location"], timeout=30)
    assert direct.status_code == 200 and direct.content == data
    # Range requests and HEAD are answered by the registry itself.
    r = requests.get(f"{reg.url}/v2/{repo}/blobs/{d}", headers={"Range": "bytes=0-9"},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 206 and r.content == data[:10]
    assert requests.head(f"{reg.url}/v2/{repo}/blobs/{d}", timeout=30).status_code == 200


def test_reindex_rebuilds_a_replica_index_from_the_store(start_registry, s3_env,
                                                         tmp_path) -> None:
    a = start_registry(env=s3_env())
    repo = a.repo("reindex")
    push_image(a.url, repo, "v1", [os.urandom(2000)], note="1")
    push_image(a.url, repo, "v2", [os.urandom(3000)], note="2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(s3_env())
    out = subprocess.run([sys.executable, "-m", "registry", "reindex", "--data",
                          str(tmp_path / "fresh")], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["repositories"] == 1
    assert stats["manifests"] == 2 and stats["tags"] == 2
    assert stats["blobs"] == 4


def _index_tags(reg, repo: str) -> dict[str, str]:
    db = sqlite3.connect(reg.data_dir / "index.sqlite", timeout=10)
    try:
        return dict(db.execute("SELECT tag, digest FROM tags WHERE repo = ?", [repo]))
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        db.close()


def test_replica_index_catches_up_with_other_replicas(start_registry, s3_env) -> None:
    a = start_registry(env=s3_env(index_sync_interval="1"))
    b = start_registry(env=s3_env(index_sync_interval="1"))
    repo = a.repo("sync")
    first = push_image(a.url, repo, "v1", [os.urandom(500)], note="first").digest
    poll(lambda: _index_tags(a, repo) == {"v1": first},
         what="the replica's index catching up")  # A's own write, by its hooks
    poll(lambda: _index_tags(b, repo) == {"v1": first},
         what="the replica's index catching up")
    second = push_image(a.url, repo, "v1", [os.urandom(500)], note="second").digest
    poll(lambda: _index_tags(b, repo) == {"v1": second},
         what="the replica's index catching up")
    assert requests.delete(f"{a.url}/v2/{repo}/manifests/v1", timeout=30).status_code == 202
    poll(lambda: _index_tags(b, repo) == {},
         what="the replica's index catching up")
