"""A Spack cache's indexes, which the server renders and stores as blobs, are served
whole after a garbage collection: through every view (OCI `index.spack`, layout v3,
layout v2, and the same keys through S3), by every worker, and after a restart.
Nothing but a view names a rendered index, so a collection may free it; the server
must then render it again rather than name a blob that is gone."""

from __future__ import annotations

import hashlib
import json

import requests
from harness import launch, wait_for
from pushing import OCI_MANIFEST, push_spack_oci
from s3api.s3util import s3_client
from test_gc import age_blobs, gc

from loadtest.spackgen import make_spec

BUCKET, PREFIX = "site", "cache/"
CACHE = BUCKET + "/" + PREFIX[:-1]
V3_INDEX = "v3/manifests/index/index.manifest.json"
V2_INDEX = "build_cache/index.json"


def _get(url: str, path: str, **headers: str) -> requests.Response:
    r = requests.get(url + path, headers=headers, timeout=30)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r


def _db(body: bytes, digest: str | None = None) -> set[str]:
    if digest is not None:
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
    return set(json.loads(body)["database"]["installs"])


def http_views(url: str) -> dict[str, set[str]]:
    """The DAG hashes each index holds, read over HTTP (OCI and the classic views)."""
    manifest = _get(url, f"/v2/{CACHE}/manifests/index.spack", Accept=OCI_MANIFEST).json()
    config = manifest["config"]["digest"]
    _get(url, f"/v2/{CACHE}/blobs/{config}")
    layer = manifest["layers"][-1]["digest"]
    out = {"oci": _db(_get(url, f"/v2/{CACHE}/blobs/{layer}").content, layer)}
    entry = _get(url, f"/spack/{CACHE}/{V3_INDEX}").json()["data"][0]
    c = entry["checksum"]
    out["v3"] = _db(_get(url, f"/spack/{CACHE}/blobs/sha256/{c[:2]}/{c}").content,
                    "sha256:" + c)
    v2 = _get(url, f"/spack/{CACHE}/{V2_INDEX}").content
    assert _get(url, f"/spack/{CACHE}/{V2_INDEX}.hash").text == \
        hashlib.sha256(v2).hexdigest()
    out["v2"] = _db(v2)
    return out


def _settled(url: str) -> dict[str, set[str]] | None:
    try:
        return http_views(url)
    except AssertionError:  # a worker has not caught up with the other's push yet
        return None


def s3_views(s3) -> dict[str, set[str]]:
    """The same through the S3 path: the index keys and the blob key the v3 one names."""
    def get(key: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=PREFIX + key)["Body"].read()

    entry = json.loads(get(V3_INDEX))["data"][0]
    c = entry["checksum"]
    out = {"v3": _db(get(f"blobs/sha256/{c[:2]}/{c}"), "sha256:" + c)}
    v2 = get(V2_INDEX)
    assert get(V2_INDEX + ".hash").decode() == hashlib.sha256(v2).hexdigest()
    out["v2"] = _db(v2)
    return out


def test_rendered_indexes_survive_collections_in_every_view(tmp_path):
    new, old = make_spec("zlib", "1.3"), make_spec("bzip2", "1.0.8", fmt=4)
    want = {"oci": {new.hash}, "v3": {new.hash}, "v2": {old.hash}}
    config = "[server]\nworkers = 2\n"
    reg = launch(tmp_path, config=config)
    try:
        s3 = s3_client(reg)
        s3.create_bucket(Bucket=BUCKET)
        push_spack_oci(reg.url, CACHE, new)
        push_spack_oci(reg.url, CACHE, old)
        # A worker reads the other's pushes from the journal within half a second.
        wait_for(lambda: [_settled(reg.url) for _ in range(3)],
                 lambda got: all(views == want for views in got))
        # Each worker renders and keeps its own copy of what it served: ask enough
        # times that both have (the kernel spreads connections between them).
        for _ in range(6):
            assert http_views(reg.url) == want
        age_blobs(reg.data_dir)
        gc(reg.url)
        for _ in range(6):
            assert http_views(reg.url) == want
        # Through S3 the index keys become entries naming the blobs, then collected.
        assert s3_views(s3) == {k: want[k] for k in ("v3", "v2")}
        age_blobs(reg.data_dir)
        gc(reg.url)
        assert s3_views(s3) == {k: want[k] for k in ("v3", "v2")}
        for _ in range(6):
            assert http_views(reg.url) == want
        age_blobs(reg.data_dir)
        gc(reg.url)
    finally:
        reg.stop()
    again = launch(tmp_path, config=config)
    try:
        assert http_views(again.url) == want
        assert s3_views(s3_client(again)) == {k: want[k] for k in ("v3", "v2")}
    finally:
        again.stop()
