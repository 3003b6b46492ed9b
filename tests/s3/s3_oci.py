"""Minimal OCI pushes and pulls over plain HTTP for the S3 tests."""

from __future__ import annotations

import hashlib
import json

import requests

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(url: str, repo: str, data: bytes, timeout: float = 60) -> str:
    """POST then PUT ?digest with the whole body; returns the digest."""
    d = digest(data)
    r = requests.post(f"{url}/v2/{repo}/blobs/uploads/", timeout=timeout)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    r = requests.put(f"{url}{loc}", params={"digest": d}, data=data, timeout=timeout,
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return d


def manifest_for(config: bytes, layers: list[bytes], annotation: str = "") -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": digest(x), "size": len(x)} for x in layers],
    }
    if annotation:
        doc["annotations"] = {"note": annotation}
    return json.dumps(doc).encode()


def push_image(url: str, repo: str, tag: str, layers: list[bytes], note: str = "") -> str:
    """Blobs, config and manifest; returns the manifest digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "note": note}).encode()
    for blob in [config, *layers]:
        push_blob(url, repo, blob)
    manifest = manifest_for(config, layers, note)
    r = requests.put(f"{url}/v2/{repo}/manifests/{tag}", data=manifest,
                     headers={"Content-Type": MANIFEST}, timeout=30)
    assert r.status_code == 201, r.text
    return digest(manifest)


def pull_image(url: str, repo: str, ref: str) -> tuple[str, list[bytes]]:
    """(manifest digest, [config, *layers]) fetched and digest-checked."""
    r = requests.get(f"{url}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST},
                     timeout=30)
    assert r.status_code == 200, r.text
    doc = r.json()
    blobs = []
    for desc in [doc["config"], *doc["layers"]]:
        b = requests.get(f"{url}/v2/{repo}/blobs/{desc['digest']}", timeout=60)
        assert b.status_code == 200, b.text
        assert digest(b.content) == desc["digest"]
        blobs.append(b.content)
    return r.headers["Docker-Content-Digest"], blobs
