"""Blob GET/HEAD (with Range) and DELETE."""

from __future__ import annotations

import pytest

from .helpers import (
    EMPTY_SHA256,
    UNKNOWN_DIGEST,
    assert_error,
    call,
    digest_of,
    push_blob,
    random_bytes,
)


@pytest.fixture
def blob(registry):
    repo = registry.repo()
    data = random_bytes(1000)
    return repo, push_blob(registry, repo, data), data


def test_get_blob(registry, blob):
    repo, digest, data = blob
    r = call(registry, "GET", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Docker-Content-Digest"] == digest
    assert int(r.headers["Content-Length"]) == len(data)


def test_head_blob(registry, blob):
    repo, digest, data = blob
    r = call(registry, "HEAD", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Docker-Content-Digest"] == digest
    assert int(r.headers["Content-Length"]) == len(data)


def test_large_blob_roundtrip(registry):
    repo = registry.repo()
    data = random_bytes(5 * 1024 * 1024 + 3)
    digest = push_blob(registry, repo, data)
    r = call(registry, "GET", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert digest_of(r.content) == digest


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=500-", 500, 999),
        ("bytes=-100", 900, 999),
        ("bytes=990-5000", 990, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=999-999", 999, 999),
    ],
)
def test_get_blob_range(registry, blob, header, start, end):
    repo, digest, data = blob
    r = call(registry, "GET", f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert int(r.headers["Content-Length"]) == end - start + 1
    assert r.content == data[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=5000-6000"])
def test_get_blob_range_unsatisfiable(registry, blob, header):
    repo, digest, data = blob
    r = call(registry, "GET", f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(data)}"


def test_get_blob_unknown(registry, blob):
    repo, _, _ = blob
    for method in ("GET", "HEAD"):
        r = call(registry, method, f"/v2/{repo}/blobs/{UNKNOWN_DIGEST}")
        assert r.status_code == 404
        if method == "GET":
            assert_error(r, 404, "BLOB_UNKNOWN")


def test_get_blob_unknown_repository(registry):
    r = call(registry, "GET", f"/v2/{registry.repo()}/blobs/{UNKNOWN_DIGEST}")
    assert_error(r, 404, "BLOB_UNKNOWN")


def test_blob_of_other_repository_is_not_served(registry, blob):
    _, digest, _ = blob
    other = registry.repo()
    push_blob(registry, other, random_bytes(10))  # the repository exists, the blob is not in it
    for repo in (other, registry.repo()):
        assert_error(call(registry, "GET", f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
        assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 404


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:abc",
        "sha256:" + "G" * 64,
        "sha256:" + "A" * 64,
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "notadigest",
        "sha256:" + "a" * 65,
        "sha512:" + "a" * 64,
    ],
)
def test_get_blob_invalid_digest(registry, blob, digest):
    repo, _, _ = blob
    assert_error(call(registry, "GET", f"/v2/{repo}/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 400
    assert_error(call(registry, "DELETE", f"/v2/{repo}/blobs/{digest}"), 400, "DIGEST_INVALID")


def test_delete_blob(registry, blob):
    repo, digest, _ = blob
    r = call(registry, "DELETE", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 202
    assert_error(call(registry, "GET", f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert_error(call(registry, "DELETE", f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_only_unlinks_from_that_repository(registry):
    data = random_bytes(100)
    a, b = registry.repo(), registry.repo()
    digest = push_blob(registry, a, data)
    push_blob(registry, b, data)
    assert call(registry, "DELETE", f"/v2/{a}/blobs/{digest}").status_code == 202
    r = call(registry, "GET", f"/v2/{b}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data


def test_delete_unknown_blob(registry, blob):
    repo, _, _ = blob
    r = call(registry, "DELETE", f"/v2/{repo}/blobs/{UNKNOWN_DIGEST}")
    assert_error(r, 404, "BLOB_UNKNOWN")
    r = call(registry, "DELETE", f"/v2/{registry.repo()}/blobs/{UNKNOWN_DIGEST}")
    assert r.status_code == 404
    assert_error(r, 404)


def test_empty_blob(registry):
    repo = registry.repo()
    assert push_blob(registry, repo, b"") == EMPTY_SHA256
    r = call(registry, "GET", f"/v2/{repo}/blobs/{EMPTY_SHA256}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == "0"
    r = call(registry, "GET", f"/v2/{repo}/blobs/{EMPTY_SHA256}", headers={"Range": "bytes=0-"})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */0"


def test_sha512_blob(registry):
    repo = registry.repo()
    data = random_bytes(3000)
    digest = push_blob(registry, repo, data, algorithm="sha512")
    assert digest.startswith("sha512:") and len(digest) == 7 + 128
    r = call(registry, "GET", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Docker-Content-Digest"] == digest
    r = call(registry, "GET", f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=-10"})
    assert r.status_code == 206
    assert r.content == data[-10:]
    assert call(registry, "DELETE", f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 404
