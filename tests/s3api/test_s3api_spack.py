"""Spack build caches pushed through the S3 endpoint with boto3, as spack's own
S3 push does (tests/clients/test_spack.py runs the real spack): the server keeps
the index, every view serves the push, bad input gets S3's XML errors and
leaves nothing indexed."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError
from harness import wait_for
from s3api.spackput import upload_dir

from loadtest.spackdir import v2_names, write_v2, write_v3
from loadtest.spackgen import make_spec

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def v3_installs(reg, cache: str) -> dict:
    r = requests.get(f"{reg.url}/spack/{cache}/v3/manifests/index/index.manifest.json",
                     timeout=30)
    if r.status_code == 404:
        return {}
    assert r.status_code == 200, r.text
    blob = r.json()["data"][0]["checksum"]
    r = requests.get(f"{reg.url}/spack/{cache}/blobs/sha256/{blob[:2]}/{blob}", timeout=30)
    return r.json()["database"]["installs"]


def s3_error(r: requests.Response) -> str:
    assert r.headers["Content-Type"].startswith("application/xml"), r.headers
    return ET.fromstring(r.content).findtext("Code")


def test_v3_push_with_a_multipart_tarball(registry, s3, bucket, tmp_path, no_tracebacks):
    dep = make_spec("zlib", "1.3")
    root = make_spec("hdf5", "1.14", deps=[dep], tar_size=20 * MiB)  # parts in parallel
    assert len(root.tarball) > 16 * MiB
    write_v3(tmp_path / "cache", [dep, root])
    keys = upload_dir(s3, bucket, tmp_path / "cache")
    assert keys[-1] == "v3/manifests/index/index.manifest.json"  # the client's update-index

    installs = v3_installs(registry, bucket)
    assert set(installs) == {dep.hash, root.hash}, installs  # the server's, not the client's
    assert installs[dep.hash]["ref_count"] == 1
    hexd = root.tarball_digest.split(":")[1]
    got = s3.get_object(Bucket=bucket, Key=f"blobs/sha256/{hexd[:2]}/{hexd}",
                        Range="bytes=1000-1999")
    assert got["Body"].read() == root.tarball[1000:2000]

    # The same tarball is the OCI layer, stored once.
    r = requests.get(f"{registry.url}/v2/{bucket}/manifests/{root.tag}",
                     headers={"Accept": OCI_MANIFEST}, timeout=60)
    assert r.status_code == 200, r.text
    assert [lay["digest"] for lay in r.json()["layers"]] == [dep.tarball_digest,
                                                            root.tarball_digest]
    if registry.data_dir is not None:
        copies = [p for p in (registry.data_dir / "storage").rglob("*")
                  if p.is_file() and p.stat().st_size == len(root.tarball)
                  and hashlib.sha256(p.read_bytes()).hexdigest() == hexd]
        assert len(copies) == 1, copies

    # Listing as spack's update-index and `buildcache list` do.
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="v3/manifests/spec/", Delimiter="/")
    assert sorted(p["Prefix"] for p in listed["CommonPrefixes"]) == [
        "v3/manifests/spec/hdf5/", "v3/manifests/spec/zlib/"]

    # Deleting the spec manifest removes the spec from the index.
    s3.delete_object(Bucket=bucket,
                     Key=f"v3/manifests/spec/hdf5/hdf5-1.14-{root.hash}.spec.manifest.json")
    assert set(wait_for(lambda: v3_installs(registry, bucket),
                        lambda got: root.hash not in got)) == {dep.hash}


def test_clients_update_index_changes_nothing(registry, s3, bucket, tmp_path):
    spec = make_spec("zstd", "1.5")
    write_v3(tmp_path / "cache", [spec])
    upload_dir(s3, bucket, tmp_path / "cache", indexes=False)
    before = requests.get(f"{registry.url}/spack/{bucket}/v3/manifests/index/"
                          "index.manifest.json", timeout=30).content
    # What an update-index racing another pipeline writes: an index without the spec.
    empty = json.dumps({"database": {"version": "8", "installs": {}}}).encode()
    hexd = hashlib.sha256(empty).hexdigest()
    s3.put_object(Bucket=bucket, Key=f"blobs/sha256/{hexd[:2]}/{hexd}", Body=empty)
    s3.put_object(Bucket=bucket, Key="v3/manifests/index/index.manifest.json",
                  Body=json.dumps({"version": 3, "data": [{
                      "contentLength": len(empty), "checksum": hexd,
                      "mediaType": "application/vnd.spack.db.v8+json",
                      "compression": "none", "checksumAlgorithm": "sha256"}]}).encode())
    after = requests.get(f"{registry.url}/spack/{bucket}/v3/manifests/index/"
                         "index.manifest.json", timeout=30).content
    assert after == before
    assert set(v3_installs(registry, bucket)) == {spec.hash}


def test_v2_push(registry, s3, bucket, tmp_path, no_tracebacks):
    dep = make_spec("bzip2", "1.0.8", fmt=4)
    root = make_spec("python", "3.11", deps=[dep], fmt=4, tar_size=9 * MiB)
    write_v2(tmp_path / "cache", [dep, root])
    upload_dir(s3, bucket, tmp_path / "cache")
    r = requests.get(f"{registry.url}/spack/{bucket}/build_cache/index.json", timeout=30)
    assert r.status_code == 200
    assert set(r.json()["database"]["installs"]) == {dep.hash, root.hash}
    digest = requests.get(f"{registry.url}/spack/{bucket}/build_cache/index.json.hash",
                          timeout=30).text
    assert digest == hashlib.sha256(r.content).hexdigest()
    _, tar_name = v2_names(root)
    got = s3.get_object(Bucket=bucket, Key=f"build_cache/{tar_name}")["Body"].read()
    assert got == root.tarball
    r = requests.get(f"{registry.url}/v2/{bucket}/manifests/{root.tag}",
                     headers={"Accept": OCI_MANIFEST}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["layers"][-1]["digest"] == root.tarball_digest


def test_bad_pushes_are_refused_and_never_indexed(registry, s3, bucket, tmp_path):
    good = make_spec("good", "1.0")
    write_v3(tmp_path / "cache", [good])
    upload_dir(s3, bucket, tmp_path / "cache", indexes=False)
    url = f"{registry.url}/s3/{bucket}"

    # Content-addressed keys: bytes that do not match the name are refused.
    wrong = hashlib.sha256(b"other").hexdigest()
    r = requests.put(f"{url}/blobs/sha256/{wrong[:2]}/{wrong}", data=b"not it", timeout=30)
    assert r.status_code == 400 and s3_error(r) == "BadDigest"
    assert requests.head(f"{url}/blobs/sha256/{wrong[:2]}/{wrong}", timeout=30).status_code \
        == 404

    # A spec manifest naming blobs the cache does not hold.
    lost = make_spec("lost", "1.0")
    missing = hashlib.sha256(lost.tarball).hexdigest()
    manifest = {"version": 3, "data": [
        {"contentLength": len(lost.tarball), "checksum": missing, "compression": "gzip",
         "mediaType": "application/vnd.spack.install.v2.tar+gzip",
         "checksumAlgorithm": "sha256"},
        {"contentLength": 10, "checksum": missing, "compression": "gzip",
         "mediaType": "application/vnd.spack.spec.v5+json", "checksumAlgorithm": "sha256"}]}
    key = f"v3/manifests/spec/lost/lost-1.0-{lost.hash}.spec.manifest.json"
    r = requests.put(f"{url}/{key}", data=json.dumps(manifest), timeout=30)
    assert 400 <= r.status_code < 500 and s3_error(r), r.text
    # A spec file that is not a spec.
    r = requests.put(f"{url}/{key}", data=b"{not json", timeout=30)
    assert 400 <= r.status_code < 500 and s3_error(r), r.text

    # Keys that try to leave the bucket, or carry a NUL.
    # (http.client: requests would remove the dot segments before sending.)
    for bad in ("v3/../../etc/passwd", "blobs/%00x", "v3/./x/../../y", "v3/%2e%2e/%2e%2e/z"):
        conn = http.client.HTTPConnection(registry.host, timeout=30)
        conn.request("PUT", f"/s3/{bucket}/{bad}", body=b"x")
        raw = conn.getresponse()
        body = raw.read()
        conn.close()
        assert 400 <= raw.status < 500, (bad, raw.status, body)
        assert ET.fromstring(body).findtext("Code"), (bad, body)

    # Multipart: unknown parts, out-of-range part numbers.
    hexd = hashlib.sha256(b"p" * 10).hexdigest()
    mp_key = f"blobs/sha256/{hexd[:2]}/{hexd}"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=mp_key)["UploadId"]
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key=mp_key, UploadId=upload, PartNumber=10001,
                       Body=b"p")
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    part = s3.upload_part(Bucket=bucket, Key=mp_key, UploadId=upload, PartNumber=1,
                          Body=b"p" * 10)
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key=mp_key, UploadId=upload,
                                     MultipartUpload={"Parts": [
                                         {"PartNumber": 1, "ETag": part["ETag"]},
                                         {"PartNumber": 2, "ETag": '"0" * 32'}]})
    assert err.value.response["Error"]["Code"] == "InvalidPart"

    assert set(v3_installs(registry, bucket)) == {good.hash}
    r = requests.get(f"{registry.url}/api/v1/spack/{bucket}/specs", timeout=30)
    assert [s["name"] for s in r.json()["specs"]] == ["good"]


def test_a_tarball_that_is_no_image_is_still_a_classic_spec(registry, s3, bucket, tmp_path,
                                                           no_tracebacks):
    """A gzip bomb as a tarball: refused as an OCI image (404, not a 500 or a
    gigabyte in memory), still listed and served by the classic views."""
    bomb = gzip.compress(b"\0" * (300 * MiB), compresslevel=9)
    spec = make_spec("bomb", "1.0")
    spec.tarball = bomb
    write_v3(tmp_path / "cache", [spec])
    upload_dir(s3, bucket, tmp_path / "cache", indexes=False)
    assert spec.hash in v3_installs(registry, bucket)
    r = requests.get(f"{registry.url}/v2/{bucket}/manifests/{spec.tag}",
                     headers={"Accept": OCI_MANIFEST}, timeout=120)
    assert r.status_code == 404, r.text
    assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert "no OCI image" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize("layout", ["v3", "v2"])
def test_the_server_index_read_through_s3_names_blobs_s3_serves(registry, s3, bucket,
                                                                 tmp_path, layout):
    """A client that reads the index over S3 (spack install from an s3:// mirror) gets
    the server's index, and the blob it names is there under its key too, whether or
    not the index a client uploaded is the same (regression: the server's index blob
    had no object entry, so a fresh client got NoSuchKey)."""
    if layout == "v3":
        spec = make_spec("zlib", "1.3")
        write_v3(tmp_path / "cache", [spec])
    else:
        spec = make_spec("zlib", "1.3", fmt=4)  # spack 0.2x's spec format
        write_v2(tmp_path / "cache", [spec])
    upload_dir(s3, bucket, tmp_path / "cache", indexes=False)  # the server keeps it

    def installs() -> dict:
        if layout == "v3":
            doc = json.loads(s3.get_object(
                Bucket=bucket, Key="v3/manifests/index/index.manifest.json")["Body"].read())
            blob = doc["data"][0]["checksum"]
            body = s3.get_object(Bucket=bucket,
                                 Key=f"blobs/sha256/{blob[:2]}/{blob}")["Body"].read()
        else:
            body = s3.get_object(Bucket=bucket, Key="build_cache/index.json")["Body"].read()
        return json.loads(body)["database"]["installs"]

    assert set(wait_for(installs, lambda got: spec.hash in got, 10)) == {spec.hash}
