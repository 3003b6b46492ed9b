"""The SQLite index records manifests, platforms and blob usage, and rebuilds from storage."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time

import requests
from harness import child_env

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def blob(url: str, repo: str, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data)
    assert r.status_code == 201
    return {"digest": digest, "size": len(data)}


def manifest(url: str, repo: str, ref: str, doc: dict, media_type: str) -> str:
    r = requests.put(f"{url}/v2/{repo}/manifests/{ref}", data=json.dumps(doc),
                     headers={"Content-Type": media_type})
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def push_image(url: str, repo: str, arch: str, tag: str | None = None) -> tuple[str, str]:
    config = blob(url, repo, json.dumps({"architecture": arch, "os": "linux",
                                          "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    layer = blob(url, repo, f"layer for {arch}".encode())
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
           "annotations": {"org.opencontainers.image.title": f"img-{arch}"}}
    body = json.dumps(doc)
    digest = manifest(url, repo, tag or "sha256:" + hashlib.sha256(body.encode()).hexdigest(),
                      doc, OCI_MANIFEST)
    return digest, layer["digest"]


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


def wait_for(check, timeout: float = 20.0):
    """Hooks are applied off the request path: poll until `check()` is truthy."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "the index did not catch up"
        time.sleep(0.05)
    return result


def test_index_tracks_writes_and_rebuilds(start_registry):
    reg = start_registry()
    url, repo = reg.url, "idx/app"
    amd, amd_layer = push_image(url, repo, "amd64", "amd64")
    arm, _ = push_image(url, repo, "arm64")
    index_doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": 0,
         "platform": {"os": "linux", "architecture": "amd64", "variant": "v3"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": 0,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]}
    top = manifest(url, repo, "latest", index_doc, OCI_INDEX)

    db = reg.data_dir / "index.sqlite"
    snap = wait_for(lambda: (s := snapshot(db)) and len(s["manifests"]) == 3 and s)
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
    after_delete = wait_for(lambda: (s := snapshot(db)) and len(s["manifests"]) == 2 and s)
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
