"""Eight pipelines push to one build cache at once, through two replicas on one
SeaweedFS bucket, half over OCI and half through the S3 path: no spec whose
push succeeded is missing from any index of either replica, or from their
SQLite spec indexes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests
from pushing import push_spack_oci
from s3api.s3util import s3_client
from s3api.spackput import upload_dir

from loadtest.spackdir import write_v3
from loadtest.spackgen import make_spec

PIPELINES = 8
SPECS_EACH = 6
CACHE = "pipelines"


def oci_index(url: str) -> set[str]:
    r = requests.get(f"{url}/v2/{CACHE}/manifests/index.spack",
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                     timeout=30)
    assert r.status_code == 200, r.text
    layer = r.json()["layers"][-1]["digest"]
    db = requests.get(f"{url}/v2/{CACHE}/blobs/{layer}", timeout=30).json()
    return set(db["database"]["installs"])


def v3_index(url: str) -> set[str]:
    r = requests.get(f"{url}/spack/{CACHE}/v3/manifests/index/index.manifest.json",
                     timeout=30)
    assert r.status_code == 200, r.text
    blob = r.json()["data"][0]["checksum"]
    db = requests.get(f"{url}/spack/{CACHE}/blobs/sha256/{blob[:2]}/{blob}", timeout=30)
    return set(db.json()["database"]["installs"])


def api_index(url: str) -> set[str]:
    r = requests.get(f"{url}/api/v1/spack/{CACHE}/specs?n=1000", timeout=30)
    return {s["hash"] for s in r.json()["specs"]} if r.status_code == 200 else set()


def test_eight_pipelines_two_replicas_lose_no_spec(start_registry, s3_env, tmp_path):
    replicas = [start_registry(env=s3_env()), start_registry(env=s3_env())]
    s3 = [s3_client(r) for r in replicas]
    s3[0].create_bucket(Bucket=CACHE)

    def pipeline(i: int) -> set[str]:
        specs = [make_spec(f"p{i}-pkg{j}", seed=i * 100 + j) for j in range(SPECS_EACH)]
        reg = replicas[i % 2]
        for j, spec in enumerate(specs):
            if i < PIPELINES // 2:
                push_spack_oci(reg.url, CACHE, spec)
            else:
                directory = tmp_path / f"p{i}-{j}"
                write_v3(directory, [spec])
                upload_dir(s3[i % 2], CACHE, directory, indexes=True)
        return {s.hash for s in specs}

    with ThreadPoolExecutor(PIPELINES) as pool:
        pushed = set().union(*pool.map(pipeline, range(PIPELINES)))
    assert len(pushed) == PIPELINES * SPECS_EACH

    # Each replica catches up with the other's journal when a view of the cache is
    # read (at most every 0.5 s); the specs API catches up before it reads its rows.
    deadline = time.monotonic() + 40
    for reg in replicas:
        for view in (oci_index, v3_index, api_index):
            while True:
                got = view(reg.url)
                if pushed <= got or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert pushed <= got, (view.__name__, reg.url, len(pushed - got))
            assert got <= pushed  # and nothing else
