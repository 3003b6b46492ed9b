"""The SQLite index records manifests, platforms and blob usage, and rebuilds from storage."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from harness import child_env, poll, wait_for
from prometheus_client.parser import text_string_to_metric_families
from pushing import (
    OCI_INDEX,
    OCI_LAYER_TAR,
    OCI_MANIFEST,
    image_config,
    push_image,
    put_manifest,
)

from registry.index.hooks import APPLY_DELAY_ENV


def push_arch(url: str, repo: str, arch: str, tag: str | None = None) -> tuple[str, str]:
    """An image for one architecture: (manifest digest, layer digest)."""
    img = push_image(url, repo, tag, [f"layer for {arch}".encode()], layer_type=OCI_LAYER_TAR,
                     config=image_config(arch, rootfs={"type": "layers", "diff_ids": []}),
                     annotations={"org.opencontainers.image.title": f"img-{arch}"})
    return img.digest, img.blobs[1]


def snapshot(path) -> dict:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    out = {
        "manifests": sorted((r["repo"], r["digest"], r["media_type"], r["size"],
                             r["annotations"]) for r in conn.execute("SELECT * FROM manifests")),
        "tags": sorted((r["repo"], r["tag"], r["digest"])
                       for r in conn.execute("SELECT * FROM tags")),
        "platforms": sorted((r["repo"], r["digest"], r["os"], r["architecture"], r["variant"])
                            for r in conn.execute("SELECT * FROM platforms")),
        "blob_refs": sorted((r["repo"], r["manifest"], r["blob"])
                            for r in conn.execute("SELECT * FROM blob_refs")),
        "blobs": sorted((r["repo"], r["digest"], r["size"])
                        for r in conn.execute("SELECT * FROM blobs")),
    }
    conn.close()
    return out


def test_index_tracks_writes_and_rebuilds(start_registry):
    reg = start_registry()
    url, repo = reg.url, "idx/app"
    amd, amd_layer = push_arch(url, repo, "amd64", "amd64")
    arm, _ = push_arch(url, repo, "arm64")
    index_doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": 0,
         "platform": {"os": "linux", "architecture": "amd64", "variant": "v3"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": 0,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]}
    top = put_manifest(url, repo, "latest", index_doc, OCI_INDEX)

    db = reg.data_dir / "index.sqlite"
    snap = poll(lambda: (s := snapshot(db)) and len(s["manifests"]) == 3 and s)
    assert {(m[1], m[2]) for m in snap["manifests"]} == {(amd, OCI_MANIFEST),
                                                         (arm, OCI_MANIFEST), (top, OCI_INDEX)}
    assert (repo, "latest", top) in snap["tags"] and (repo, "amd64", amd) in snap["tags"]
    assert (repo, amd, "linux", "amd64", "") in snap["platforms"]  # from the config blob
    assert (repo, amd, "linux", "amd64", "v3") in snap["platforms"]  # from the index entry
    assert (repo, arm, "linux", "arm64", "v8") in snap["platforms"]
    assert (repo, amd, amd_layer) in snap["blob_refs"]  # which manifests use the layer
    assert any(b[1] == amd_layer for b in snap["blobs"])

    # Deleting a manifest drops its rows and its tags.
    assert requests.delete(f"{url}/v2/{repo}/manifests/{arm}").status_code == 202
    after_delete = poll(lambda: (s := snapshot(db)) and len(s["manifests"]) == 2 and s)
    assert not any(m[1] == arm for m in after_delete["manifests"])
    assert not any(r[1] == arm for r in after_delete["blob_refs"])

    # Rebuild from storage alone gives the same rows (timestamps aside).
    reg.stop()
    db.unlink()
    out = subprocess.run([sys.executable, "-m", "registry", "reindex", "--data",
                          str(reg.data_dir)], capture_output=True, text=True, timeout=60,
                         env=child_env())
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["manifests"] == 2 and stats["tags"] == 2 and stats["repositories"] == 1
    rebuilt = snapshot(db)
    # Platforms from a deleted manifest's index entry stay with the index that names them.
    assert rebuilt == after_delete


def queue_depth(url: str) -> float:
    """The server's index writes queued and not yet applied (its /metrics)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "registry_index_queue_depth")


def settled(url: str, db, tags: int) -> dict:
    """The snapshot once it has `tags` tags and the server's index queue is empty:
    every event of the pushes applied, not just the one that wrote the last tag."""
    def check() -> dict | None:
        if queue_depth(url) != 0:
            return None
        rows = index_rows(db)
        return rows if rows and len(rows["tags"]) == tags else None

    return poll(check, what="the index settling")


def index_rows(db) -> dict:
    """The snapshot without timestamps or anything a file might lack mid-start."""
    try:
        return snapshot(db)
    except sqlite3.Error:  # not created (or being replaced) yet
        return {}


def push_some(url: str, repo: str) -> None:
    amd, _ = push_arch(url, repo, "amd64", "amd64")
    arm, _ = push_arch(url, repo, "arm64", "arm64")
    put_manifest(url, repo, "latest", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": 0,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": 0,
         "platform": {"os": "linux", "architecture": "arm64"}}]}, OCI_INDEX)


def test_a_crash_with_events_still_queued_loses_nothing(start_registry, tmp_path):
    # A first run leaves a clean index, so the second starts without a catch-up pass.
    start_registry(tmp=tmp_path).stop()
    reg = start_registry(tmp=tmp_path, env={APPLY_DELAY_ENV: "120"})
    repo = "crash/idx"
    push_some(reg.url, repo)
    db = reg.data_dir / "index.sqlite"
    # Every push was answered, and the writer still holds all their events.
    assert index_rows(db)["manifests"] == [] and index_rows(db)["tags"] == []
    os.kill(reg.pid, signal.SIGKILL)
    reg.process.wait(10)

    # The killed writer's row marks the index dirty: the restart catches up with storage.
    reg2 = start_registry(tmp=tmp_path)
    rows = poll(lambda: (s := index_rows(db)) and len(s["tags"]) == 3 and s)
    assert len(rows["manifests"]) == 3 and len(rows["blobs"]) == 4
    assert {t[1] for t in rows["tags"]} == {"amd64", "arm64", "latest"}
    assert {(p[2], p[3]) for p in rows["platforms"]} >= {("linux", "amd64"), ("linux", "arm64")}
    assert "dirty" in reg2.log()


@pytest.mark.parametrize("damage", ["newer version", "garbage"])
def test_an_unusable_index_is_rebuilt_from_storage_at_startup(start_registry, tmp_path,
                                                              damage):
    reg = start_registry(tmp=tmp_path)
    push_some(reg.url, "unusable/idx")
    db = reg.data_dir / "index.sqlite"
    before = settled(reg.url, db, tags=3)
    reg.stop()
    if damage == "garbage":
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        db.write_bytes(os.urandom(1 << 16))
    else:
        conn = sqlite3.connect(db)
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        conn.commit()
        conn.close()

    reg2 = start_registry(tmp=tmp_path)
    wait_for(lambda: index_rows(db), lambda rows: rows == before)
    assert index_rows(db) == before  # (pytest shows the difference if not)
    assert "cannot be used" in reg2.log()
    assert list(db.parent.glob("index.sqlite.unusable-*"))


def pull_rows(db) -> dict[tuple[str, str], tuple[int, float]]:
    try:
        conn = sqlite3.connect(db)
        try:
            return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
                "SELECT digest, kind, count, last_pulled FROM pulls")}
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


@pytest.mark.parametrize("written", ["periodically", "at shutdown"])
def test_pulls_are_counted(start_registry, written):
    seconds = "1" if written == "periodically" else "3600"
    reg = start_registry(env={"REGISTRY_INDEX_PULL_FLUSH_SECONDS": seconds})
    repo = "pulls/app"
    digest, layer = push_arch(reg.url, repo, "amd64", "v1")
    t0 = time.time()
    for _ in range(3):
        assert requests.get(f"{reg.url}/v2/{repo}/manifests/v1",
                            headers={"Accept": OCI_MANIFEST}).status_code == 200
    for _ in range(2):
        assert requests.get(f"{reg.url}/v2/{repo}/blobs/{layer}").status_code == 200
    db = reg.data_dir / "index.sqlite"
    if written == "at shutdown":
        reg.stop()
    rows = poll(lambda: (p := pull_rows(db)) and len(p) >= 2 and p)
    assert rows[(digest, "manifest")][0] == 3 and rows[(layer, "blob")][0] == 2
    for _, last in rows.values():
        assert t0 <= last <= time.time()
