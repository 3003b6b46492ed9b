"""Specs pushed over OCI: the server keeps index.spack and the classic views."""

from __future__ import annotations

import gzip
import hashlib
import json

from pushing import push_blob_async, push_spack_oci_async

from loadtest.spackgen import make_spec


async def get_index(client, repo: str) -> dict:
    r = await client.get(f"/v2/{repo}/manifests/index.spack")
    assert r.status == 200, await r.text()
    manifest = json.loads(await r.read())
    layer = manifest["layers"][-1]["digest"]
    r = await client.get(f"/v2/{repo}/blobs/{layer}")
    assert r.status == 200
    return json.loads(await r.read())


async def test_push_appears_in_index_spack(client):
    dep = make_spec("zlib", "1.3")
    root = make_spec("hdf5", "1.14", deps=[dep])
    assert (await push_spack_oci_async(client, "site/cache", dep))[0] == 201
    assert (await push_spack_oci_async(client, "site/cache", root))[0] == 201
    db = (await get_index(client, "site/cache"))["database"]
    assert db["version"] == "8"
    installs = db["installs"]
    assert set(installs) == {dep.hash, root.hash}
    assert installs[root.hash]["in_buildcache"] is True
    assert installs[dep.hash]["ref_count"] == 1
    assert installs[root.hash]["ref_count"] == 0
    assert installs[root.hash]["spec"]["name"] == "hdf5"


async def test_index_of_unknown_repo_is_404(client):
    r = await client.get("/v2/nothing/manifests/index.spack")
    assert r.status == 404


async def test_tag_delete_removes_from_index(client):
    a, b = make_spec("a-pkg"), make_spec("b-pkg")
    for s in (a, b):
        assert (await push_spack_oci_async(client, "c1", s))[0] == 201
    r = await client.delete(f"/v2/c1/manifests/{a.tag}")
    assert r.status == 202
    installs = (await get_index(client, "c1"))["database"]["installs"]
    assert set(installs) == {b.hash}


async def test_client_update_index_changes_nothing(client):
    a = make_spec("a-pkg")
    assert (await push_spack_oci_async(client, "c2", a))[0] == 201
    before = await client.get("/v2/c2/manifests/index.spack")
    digest = before.headers["Docker-Content-Digest"]
    # what a client's update-index pushes: an empty database
    empty = b'{"database":{"version":"8","installs":{}}}'
    d = await push_blob_async(client, "c2", empty)
    c = await push_blob_async(client, "c2", b"{}")
    m = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "schemaVersion": 2,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c,
                    "size": 2},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "digest": d, "size": len(empty)}]}
    r = await client.put("/v2/c2/manifests/index.spack", data=json.dumps(m).encode(),
                         headers={"Content-Type": m["mediaType"]})
    assert r.status == 201
    after = await client.get("/v2/c2/manifests/index.spack")
    assert after.headers["Docker-Content-Digest"] == digest


async def test_bad_config_refused(client):
    a = make_spec("a-pkg")
    status, body = await push_spack_oci_async(client, "c3", a, config=b"{not json")
    assert status == 400 and "MANIFEST_INVALID" in body
    status, body = await push_spack_oci_async(client, "c3", a,
                                  config=json.dumps({"spec": {"nodes": 3}}).encode())
    assert status == 400 and "MANIFEST_INVALID" in body
    other = make_spec("other")
    status, body = await push_spack_oci_async(client, "c3", a, config=other.oci_config())
    assert status == 400 and "MANIFEST_INVALID" in body
    r = await client.get(f"/v2/c3/manifests/{a.tag}")
    assert r.status == 404
    r = await client.get("/v2/c3/manifests/index.spack")
    assert r.status == 404


async def test_classic_v3_view_of_oci_push(client):
    dep = make_spec("zlib", "1.3")
    root = make_spec("hdf5", "1.14", deps=[dep])
    for s in (dep, root):
        assert (await push_spack_oci_async(client, "site/cache", s))[0] == 201
    base = "/spack/site/cache"
    r = await client.get(f"{base}/v3/layout.json")
    assert r.status == 200 and json.loads(await r.read()) == {"signing": "gpg"}
    r = await client.get(f"{base}/v3/manifests/index/index.manifest.json")
    assert r.status == 200
    etag = r.headers["ETag"]
    assert not etag.startswith("W/")
    entry = json.loads(await r.read())["data"][0]
    assert entry["mediaType"] == "application/vnd.spack.db.v8+json"
    r2 = await client.get(f"{base}/v3/manifests/index/index.manifest.json",
                          headers={"If-None-Match": etag})
    assert r2.status == 304
    c = entry["checksum"]
    r = await client.get(f"{base}/blobs/sha256/{c[:2]}/{c}")
    assert r.status == 200
    db = json.loads(await r.read())
    assert root.hash in db["database"]["installs"]
    r = await client.get(f"{base}/v3/manifests/spec/hdf5/hdf5-1.14-{root.hash}"
                         ".spec.manifest.json")
    assert r.status == 200
    data = json.loads(await r.read())["data"]
    tar = next(e for e in data if "install" in e["mediaType"])
    spec = next(e for e in data if "spec" in e["mediaType"])
    assert tar["checksum"] == hashlib.sha256(root.tarball).hexdigest()
    r = await client.get(f"{base}/blobs/sha256/{tar['checksum'][:2]}/{tar['checksum']}",
                         headers={"Range": "bytes=0-9"})
    assert r.status == 206 and await r.read() == root.tarball[:10]
    r = await client.get(f"{base}/blobs/sha256/{spec['checksum'][:2]}/{spec['checksum']}")
    doc = json.loads(gzip.decompress(await r.read()))
    assert doc["spec"]["nodes"][0]["hash"] == root.hash
    r = await client.head(f"{base}/v3/manifests/index/index.manifest.json")
    assert r.status == 200 and int(r.headers["Content-Length"]) > 0


async def test_classic_v2_view_of_format4_push(client):
    dep = make_spec("zlib", "1.3", fmt=4)
    root = make_spec("hdf5", "1.14", deps=[dep], fmt=4)
    for s in (dep, root):
        assert (await push_spack_oci_async(client, "old", s))[0] == 201
    r = await client.get("/spack/old/build_cache/index.json")
    assert r.status == 200
    body = await r.read()
    db = json.loads(body)
    assert db["database"]["version"] == "7"
    assert set(db["database"]["installs"]) == {dep.hash, root.hash}
    r = await client.get("/spack/old/build_cache/index.json.hash")
    assert (await r.read()).decode() == hashlib.sha256(body).hexdigest()
    stem = f"linux-debian12-x86_64_v3-gcc-12.2.0-hdf5-1.14-{root.hash}"
    r = await client.get(f"/spack/old/build_cache/{stem}.spec.json")
    assert r.status == 200
    doc = json.loads(await r.read())
    assert doc["binary_cache_checksum"]["hash"] == hashlib.sha256(root.tarball).hexdigest()
    r = await client.get(f"/spack/old/build_cache/linux-debian12-x86_64_v3/gcc-12.2.0/"
                         f"hdf5-1.14/{stem}.spack")
    assert r.status == 200 and await r.read() == root.tarball
    r = await client.get(f"/spack/old/build_cache/{stem}.spec.json.sig")
    assert r.status == 404  # no site key configured


async def test_views_of_unknown_things_are_404(client):
    r = await client.get("/spack/nope/v3/manifests/index/index.manifest.json")
    assert r.status == 404
    r = await client.get("/spack/nope/build_cache/index.json")
    assert r.status == 404


async def test_hostile_view_paths_are_refused_never_500(client):
    assert (await push_spack_oci_async(client, "site/cache", make_spec("zlib", "1.3")))[0] \
        == 201
    h = "abcdefghijklmnopqrstuvwxyz234567"
    for path in ("site/cache/build_cache/..%2F..%2Fsecret",
                 "site/cache/blobs/sha256/ab/..%2F..%2F..%2Fetc%2Fpasswd",
                 "site/cache/v3/..%2F..%2Fv3/layout.json",
                 "a//b/v3/layout.json", "a..b/build_cache/index.json",
                 "site/cache/v3/%00", "site/cache/build_cache/%ff%fe",
                 "site/cache/build_cache/" + "a" * 5000,
                 "site/cache/blobs/sha256/AB/AB" + "0" * 62,
                 f"site/cache/v3/manifests/spec/x/x-1-{h}.spec.manifest.json",
                 f"site/cache/build_cache/_pgp/{'A' * 40}.pub",
                 "site/cache/v3/manifests/key/keys.manifest.json"):
        for method in ("GET", "HEAD"):
            r = await client.request(method, f"/spack/{path}")
            assert 400 <= r.status < 500, (method, path, r.status, await r.text())


async def test_classic_spec_views_follow_removal_and_push_again(client):
    """Spec documents are kept per worker (spack.classic.Memo) only while the
    cache's state is unchanged: a removed spec is 404 at once, a pushed one 200."""
    a = make_spec("memo-pkg", "1.0")
    v3 = f"/spack/c9/v3/manifests/spec/memo-pkg/memo-pkg-1.0-{a.hash}.spec.manifest.json"
    v2 = (f"/spack/c9/build_cache/linux-debian12-x86_64_v3-gcc-12.2.0-memo-pkg-1.0-"
          f"{a.hash}.spec.json")
    assert (await push_spack_oci_async(client, "c9", a))[0] == 201
    first = {}
    for _ in range(2):  # the second from the memo, the same bytes
        for path in (v3, v2):
            r = await client.get(path)
            assert r.status == 200, path
            assert first.setdefault(path, await r.read()) == await r.read()
    r = await client.delete(f"/v2/c9/manifests/{a.tag}")
    assert r.status == 202
    for path in (v3, v2):
        assert (await client.get(path)).status == 404, path
    assert (await push_spack_oci_async(client, "c9", a))[0] == 201
    for path in (v3, v2):
        r = await client.get(path)
        assert r.status == 200 and await r.read() == first[path], path
