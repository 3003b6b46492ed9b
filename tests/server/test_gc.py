"""Online garbage collection against a running server: what goes and what stays,
pushes racing collections, and the offline command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from harness import child_env, launch
from prometheus_client.parser import text_string_to_metric_families
from pushing import OCI_MANIFEST, digest_of, manifest_for, push_blob

MT = OCI_MANIFEST



def put_image(url: str, repo: str, tag: str, config: bytes, layers: list[bytes]) -> bytes:
    manifest = manifest_for(config, layers)
    r = requests.put(f"{url}/v2/{repo}/manifests/{tag}", data=manifest,
                     headers={"Content-Type": MT}, timeout=60)
    assert r.status_code == 201, r.text
    return manifest


def age_blobs(data_dir, seconds: float = 7200) -> None:
    """Make every stored blob look old (past any grace period)."""
    old = time.time() - seconds
    for root, _, files in os.walk(data_dir / "storage" / "blobs"):
        for name in files:
            os.utime(os.path.join(root, name), (old, old))


def gc(url: str, **params) -> dict:
    r = requests.post(f"{url}/api/v1/gc", params={"grace": 60, **params}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_online_collection_frees_only_the_unreferenced(tmp_path):
    reg = launch(tmp_path)
    try:
        config, layer = b'{"os":"linux"}', os.urandom(300_000)
        push_blob(reg.url, "app/a", config)
        push_blob(reg.url, "app/a", layer)
        put_image(reg.url, "app/a", "v1", config, [layer])
        orphan = push_blob(reg.url, "app/a", os.urandom(200_000))
        young = push_blob(reg.url, "app/b", os.urandom(1000))
        age_blobs(reg.data_dir)
        young = push_blob(reg.url, "app/b", os.urandom(1000))  # after the ageing: young
        dry = gc(reg.url, dry_run=1)
        assert dry["dry_run"] and dry["deleted"] == 2 and dry["bytes_freed"] == 201_000
        assert requests.head(f"{reg.url}/v2/app/a/blobs/{orphan}", timeout=10).status_code \
            == 200
        done = gc(reg.url)
        assert done["deleted"] == 2 and done["links_removed"] == 2
        assert requests.head(f"{reg.url}/v2/app/a/blobs/{orphan}", timeout=10).status_code \
            == 404
        assert requests.head(f"{reg.url}/v2/app/b/blobs/{young}", timeout=10).status_code \
            == 200
        got = requests.get(f"{reg.url}/v2/app/a/blobs/{digest_of(layer)}", timeout=30)
        assert got.content == layer
        too_short = requests.post(f"{reg.url}/api/v1/gc?grace=1", timeout=30)
        assert too_short.status_code == 400
        # The collector's figures, and the index's queue, on /metrics.
        samples = {s.name + json.dumps(s.labels, sort_keys=True): s.value
                   for family in text_string_to_metric_families(
                       requests.get(f"{reg.url}/metrics", timeout=10).text)
                   for s in family.samples}
        assert samples['registry_gc_runs_total{"dry_run": "false"}'] == 1
        assert samples['registry_gc_runs_total{"dry_run": "true"}'] == 1
        assert samples["registry_gc_freed_bytes_total{}"] == 201_000
        assert samples["registry_gc_deleted_blobs_total{}"] == 2
        assert samples["registry_gc_last_run_timestamp_seconds{}"] > 0
        assert samples["registry_index_queue_depth{}"] >= 0
    finally:
        reg.stop()
    # Offline: refused while a server holds the store, runs once it is stopped.
    cmd = [sys.executable, "-m", "registry", "gc", "--json", "--grace", "1m",
           "--data", str(reg.data_dir)]
    again = launch(tmp_path)
    try:
        refused = subprocess.run(cmd, capture_output=True, text=True, env=child_env(),
                                 timeout=60)
        assert refused.returncode == 2 and "POST /api/v1/gc" in refused.stderr
    finally:
        again.stop()
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] == 0


def test_collections_during_50_pushes_sharing_layers_lose_nothing(tmp_path):
    reg = launch(tmp_path, config="[server]\nworkers = 2\n")
    try:
        # Shared layers stored long ago by an image since deleted: unreferenced and old,
        # exactly what a collection frees, and what every push below reuses (mount).
        shared = [os.urandom(200_000) for _ in range(3)]
        for data in shared:
            push_blob(reg.url, "base/old", data)
        age_blobs(reg.data_dir)
        stop = threading.Event()
        reports: list[dict] = []

        def collector() -> None:
            while not stop.is_set():
                r = requests.post(f"{reg.url}/api/v1/gc", params={"grace": 60}, timeout=120)
                if r.status_code == 200:
                    reports.append(r.json())

        def push(i: int) -> tuple[str, bytes, list[bytes]]:
            repo = f"app/n{i}"
            own = os.urandom(50_000)
            layers = [*shared, own]
            for data in shared:
                r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/?mount={digest_of(data)}"
                                  "&from=base/old", timeout=60)
                if r.status_code != 201:  # collected meanwhile: upload as a client would
                    push_blob(reg.url, repo, data)
            push_blob(reg.url, repo, own)
            config = json.dumps({"i": i}).encode()
            push_blob(reg.url, repo, config)
            for _attempt in range(3):
                try:
                    return repo, put_image(reg.url, repo, "v1", config, layers), layers
                except AssertionError as exc:  # a blob collected before it was named:
                    assert "MANIFEST_BLOB_UNKNOWN" in str(exc), exc  # loud, and retried
                    for data in layers:
                        push_blob(reg.url, repo, data)
            raise AssertionError("manifest never accepted")

        gc_thread = threading.Thread(target=collector)
        gc_thread.start()
        try:
            with ThreadPoolExecutor(16) as pool:
                pushed = list(pool.map(push, range(50)))
        finally:
            stop.set()
            gc_thread.join(120)
        assert reports  # collections did run meanwhile
        age_blobs(reg.data_dir)
        gc(reg.url)  # and one more after everything settled
        for repo, manifest, layers in pushed:
            got = requests.get(f"{reg.url}/v2/{repo}/manifests/v1", headers={"Accept": MT},
                               timeout=30)
            assert got.status_code == 200 and got.content == manifest
            for data in layers:
                blob = requests.get(f"{reg.url}/v2/{repo}/blobs/{digest_of(data)}", timeout=60)
                assert blob.status_code == 200 and blob.content == data, (repo, digest_of(data))
        assert "Traceback" not in reg.log()
    finally:
        reg.stop()


def age_revisions(data_dir, seconds: float = 30 * 86400) -> None:
    """Make every manifest look pushed `seconds` ago (retention judges by that)."""
    old = time.time() - seconds
    for root, _, files in os.walk(data_dir / "storage" / "repositories"):
        if "/_manifests/revisions/" in root + "/":
            for name in files:
                try:
                    os.utime(os.path.join(root, name), (old, old))
                except FileNotFoundError:
                    pass  # deleted meanwhile


def test_retention_while_clients_tag_old_manifests(tmp_path):
    """[gc] retention deletes untagged manifests while clients tag exactly those
    (two workers, collections back to back): every tag resolves afterwards, and the
    manifests nobody tagged are gone with their layers."""
    reg = launch(tmp_path, config='[server]\nworkers = 2\n[gc]\nretention = ["ci/* keep=0"]\n')
    try:
        config = b'{"os":"linux"}'
        push_blob(reg.url, "ci/app", config)
        images = []
        for _ in range(30):
            layer = os.urandom(20_000)
            push_blob(reg.url, "ci/app", layer)
            manifest = manifest_for(config, [layer])
            r = requests.put(f"{reg.url}/v2/ci/app/manifests/{digest_of(manifest)}", data=manifest,
                             headers={"Content-Type": MT}, timeout=60)
            assert r.status_code == 201, r.text
            images.append((manifest, layer))
        age_blobs(reg.data_dir)
        age_revisions(reg.data_dir)
        stop = threading.Event()
        reports: list[dict] = []

        def collector() -> None:
            while not stop.is_set():
                age_revisions(reg.data_dir)  # a re-push refreshed one: old again
                r = requests.post(f"{reg.url}/api/v1/gc", params={"grace": 60}, timeout=120)
                if r.status_code == 200:
                    reports.append(r.json())

        def tag(i: int) -> bool:
            manifest, _layer = images[i]
            time.sleep(i * 0.15)  # spread over a few collections
            r = requests.put(f"{reg.url}/v2/ci/app/manifests/t{i}", data=manifest,
                             headers={"Content-Type": MT}, timeout=60)
            # Deleted before the push named it: refused loudly, as for a blob.
            return r.status_code == 201

        gc_thread = threading.Thread(target=collector)
        gc_thread.start()
        try:
            with ThreadPoolExecutor(8) as pool:
                tagged = list(pool.map(tag, range(0, 30, 2)))  # the even ones
        finally:
            stop.set()
            gc_thread.join(120)
        assert reports and sum(r["manifests_deleted"] for r in reports) > 0
        age_blobs(reg.data_dir)
        age_revisions(reg.data_dir)
        final = gc(reg.url)
        assert final["manifests_deleted"] + sum(r["manifests_deleted"] for r in reports) >= 15
        for n, i in enumerate(range(0, 30, 2)):
            manifest, layer = images[i]
            got = requests.get(f"{reg.url}/v2/ci/app/manifests/t{i}", headers={"Accept": MT},
                               timeout=30)
            if not tagged[n]:
                assert got.status_code == 404  # the push was refused: no tag at all
                continue
            assert got.status_code == 200 and got.content == manifest, i
            blob = requests.get(f"{reg.url}/v2/ci/app/blobs/{digest_of(layer)}", timeout=30)
            assert blob.status_code == 200 and blob.content == layer
        for i in range(1, 30, 2):  # never tagged: gone, and their layers
            manifest, layer = images[i]
            assert requests.get(f"{reg.url}/v2/ci/app/manifests/{digest_of(manifest)}",
                                headers={"Accept": MT}, timeout=30).status_code == 404
            assert requests.head(f"{reg.url}/v2/ci/app/blobs/{digest_of(layer)}",
                                 timeout=30).status_code == 404
        assert sum(tagged) >= 1
        assert "Traceback" not in reg.log()
    finally:
        reg.stop()


def test_gc_interval_collects_on_its_own(tmp_path):
    """`[gc] interval`: the server collects by itself, with its settings (the orphan
    stays: younger than the grace period), and says so on /metrics."""
    reg = launch(tmp_path, config="[gc]\ninterval = 1\n")
    try:
        orphan = push_blob(reg.url, "app/a", os.urandom(1000))
        deadline = time.monotonic() + 30
        runs = 0.0
        while runs < 1:
            assert time.monotonic() < deadline, "no collection ran"
            time.sleep(0.5)
            runs = sum(s.value for family in text_string_to_metric_families(
                requests.get(f"{reg.url}/metrics", timeout=10).text)
                for s in family.samples
                if s.name == "registry_gc_runs_total" and s.labels == {"dry_run": "false"})
        assert requests.head(f"{reg.url}/v2/app/a/blobs/{orphan}", timeout=10).status_code \
            == 200
        assert "gc:" in reg.log() and "Traceback" not in reg.log()
    finally:
        reg.stop()
