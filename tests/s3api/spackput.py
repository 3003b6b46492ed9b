"""Pushing a build cache directory through the S3 endpoint in the order spack
does: blobs first, then spec documents, then (a client's own update-index) the
index files. Shared by the boto3 tests and the replica tests on SeaweedFS."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import requests
from boto3.s3.transfer import TransferConfig

from loadtest.spackgen import FakeSpec

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

# boto3's own defaults, spelled out: spack's push goes through them.
TRANSFER = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                          max_concurrency=4, use_threads=True)
INDEX_NAMES = ("index.manifest.json", "index.json", "index.json.hash")


def phase(rel: str) -> int:
    if rel.startswith("blobs/") or rel.endswith(".spack"):  # tarballs before specs
        return 0
    if rel.rsplit("/", 1)[-1] in INDEX_NAMES:
        return 2
    return 1


def upload_dir(s3, bucket: str, root: Path, prefix: str = "", indexes: bool = True) -> list[str]:
    """Upload every file below `root` to `bucket` under `prefix`; the keys, in order."""
    files = sorted((p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
                   key=lambda rel: (phase(rel), rel))
    keys = []
    for rel in files:
        if phase(rel) == 2 and not indexes:
            continue
        key = prefix + rel
        with open(root / rel, "rb") as f:
            s3.upload_fileobj(f, bucket, key, Config=TRANSFER)
        keys.append(key)
    return keys


def push_blob(url: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data)
    assert r.status_code == 201, r.text
    return digest


def push_oci(url: str, repo: str, spec: FakeSpec) -> None:
    """As spack's OCI push: the tarball, the config carrying the spec, the manifest."""
    layer = push_blob(url, repo, spec.tarball)
    config = spec.oci_config()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": push_blob(url, repo, config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer, "size": len(spec.tarball)}]}
    r = requests.put(f"{url}/v2/{repo}/manifests/{spec.tag}", data=json.dumps(manifest),
                     headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
