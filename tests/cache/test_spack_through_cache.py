"""Spack's classic views through a node cache: every path answers what the
origin's view answers, tarballs and indexes are fetched from the origin once
however many nodes' spack ask, and what the origin does not have is a 404."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import requests
from cache_helpers import ORIGIN_CONFIG, settled_gets
from pushing import push_spack_oci as push_oci

from loadtest.spackdir import v2_names
from loadtest.spackgen import make_spec

CACHE = "site/spack"
MiB = 1 << 20


def test_classic_views_through_the_cache(start_registry, start_cache):
    origin = start_registry(config=ORIGIN_CONFIG)
    dep = make_spec("zlib", "1.3")
    root = make_spec("hdf5", "1.14", deps=[dep], tar_size=4 * MiB)
    old = make_spec("bzip2", "1.0.8", fmt=4, tar_size=2 * MiB)
    for spec in (dep, root, old):
        push_oci(origin.url, CACHE, spec)
    cache = start_cache(origin.url)
    spec_name, tar_name = v2_names(old)
    paths = ["v3/layout.json", "v3/manifests/index/index.manifest.json",
             f"v3/manifests/spec/hdf5/hdf5-1.14-{root.hash}.spec.manifest.json",
             "build_cache/index.json", "build_cache/index.json.hash",
             f"build_cache/{spec_name}", f"build_cache/{tar_name}"]
    index = requests.get(f"{origin.url}/spack/{CACHE}/v3/manifests/index/"
                         "index.manifest.json", timeout=30).json()
    h = index["data"][0]["checksum"]
    paths.append(f"blobs/sha256/{h[:2]}/{h}")
    for rel in paths:
        want = requests.get(f"{origin.url}/spack/{CACHE}/{rel}", timeout=30)
        got = requests.get(f"{cache.url}/spack/{CACHE}/{rel}", timeout=30)
        assert want.status_code == 200, rel
        assert got.status_code == 200 and got.content == want.content, rel
        assert got.headers["ETag"] == want.headers["ETag"], rel

    # Many nodes' spack fetching the same tarball: the origin sends it once.
    tar = root.tarball_digest.split(":")[1]
    url = f"{cache.url}/spack/{CACHE}/blobs/sha256/{tar[:2]}/{tar}"
    with ThreadPoolExecutor(16) as pool:
        bodies = list(pool.map(lambda _: requests.get(url, timeout=60).content, range(16)))
    assert {hashlib.sha256(b).hexdigest() for b in bodies} == {tar}
    assert settled_gets(origin, f"/v2/{CACHE}/blobs/{root.tarball_digest}") == 1
    # A v2 tarball (named by its spec) is the same blob, fetched once too.
    for _ in range(3):
        r = requests.get(f"{cache.url}/spack/{CACHE}/build_cache/{tar_name}", timeout=60)
        assert r.content == old.tarball
    assert settled_gets(origin, f"/v2/{CACHE}/blobs/{old.tarball_digest}") == 1
    r = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert r.status_code == 206 and r.content == root.tarball[100:200]

    missing = requests.get(f"{cache.url}/spack/{CACHE}/v3/manifests/spec/x/"
                           f"x-1-{'a' * 32}.spec.manifest.json", timeout=30)
    assert missing.status_code == 404
    assert requests.get(f"{cache.url}/spack/nothing/here/v3/manifests/index/"
                        "index.manifest.json", timeout=30).status_code == 404
    # A name no cache can have is refused by the node itself.
    for name in ("a//b", "a..b", "a/-b"):
        r = requests.get(f"{cache.url}/spack/{name}/v3/layout.json", timeout=30)
        assert r.status_code == 400 and r.headers["Content-Type"].startswith("text/plain")
