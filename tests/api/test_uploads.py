"""Blob uploads: monolithic, single-request, chunked, streamed, status, cancel."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest

from .helpers import (
    EMPTY_SHA256,
    assert_error,
    call,
    digest_of,
    put_upload,
    random_bytes,
    start_upload,
    upload_url,
)

UUID_RE = re.compile(r"[0-9a-fA-F-]{32,36}")


def patch(reg, location, data, start=None, **headers):
    if start is not None:
        headers.setdefault("Content-Range", f"{start}-{start + len(data) - 1}")
    headers.setdefault("Content-Type", "application/octet-stream")
    return call(reg, "PATCH", upload_url(location), data=data, headers=headers)


def assert_blob(reg, repo, digest, data):
    r = call(reg, "GET", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200, r.text
    assert r.content == data


def test_post_starts_upload(registry):
    repo = registry.repo()
    r = call(registry, "POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    location = upload_url(r.headers["Location"])
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    upload_id = r.headers["Docker-Upload-UUID"]
    assert UUID_RE.fullmatch(upload_id)
    assert upload_id in location
    assert r.headers["Range"] == "0-0"


def test_post_without_trailing_slash(registry):
    repo = registry.repo()
    r = call(registry, "POST", f"/v2/{repo}/blobs/uploads")
    assert r.status_code == 202
    assert upload_url(r.headers["Location"]).startswith(f"/v2/{repo}/blobs/uploads/")


def test_monolithic_upload(registry):
    repo = registry.repo()
    data = random_bytes(4096)
    digest = digest_of(data)
    location = start_upload(registry, repo)
    r = put_upload(registry, location, digest, data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert_blob(registry, repo, digest, data)
    # the session is gone once the upload is complete
    assert_error(call(registry, "GET", upload_url(location)), 404, "BLOB_UPLOAD_UNKNOWN")


def test_single_request_upload(registry):
    repo = registry.repo()
    data = random_bytes(777)
    digest = digest_of(data)
    r = call(registry, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert_blob(registry, repo, digest, data)


def test_single_request_upload_wrong_digest(registry):
    repo = registry.repo()
    data = random_bytes(100)
    wrong = digest_of(b"other")
    r = call(registry, "POST", f"/v2/{repo}/blobs/uploads/?digest={wrong}", data=data)
    assert_error(r, 400, "DIGEST_INVALID")
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404


def test_single_request_upload_invalid_digest(registry):
    r = call(registry, "POST", f"/v2/{registry.repo()}/blobs/uploads/?digest=sha256:xyz", data=b"x")
    assert_error(r, 400, "DIGEST_INVALID")


def test_chunked_upload(registry):
    repo = registry.repo()
    data = random_bytes(3000)
    digest = digest_of(data)
    location = start_upload(registry, repo)
    offset = 0
    for size in (1000, 1500):
        r = patch(registry, location, data[offset : offset + size], start=offset)
        assert r.status_code == 202, r.text
        offset += size
        assert r.headers["Range"] == f"0-{offset - 1}"
        assert upload_url(r.headers["Location"]).startswith(f"/v2/{repo}/blobs/uploads/")
        location = r.headers["Location"]
        assert r.headers["Docker-Upload-UUID"] in location
    r = call(registry, "GET", upload_url(location))
    assert r.status_code == 204
    assert r.headers["Range"] == f"0-{offset - 1}"
    assert upload_url(r.headers["Location"]).startswith(f"/v2/{repo}/blobs/uploads/")
    # the last chunk travels with the closing PUT
    last = data[offset:]
    r = put_upload(
        registry,
        location,
        digest,
        last,
        headers={"Content-Range": f"{offset}-{len(data) - 1}"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert_blob(registry, repo, digest, data)


def test_chunked_upload_final_put_without_body(registry):
    repo = registry.repo()
    data = random_bytes(2048)
    location = start_upload(registry, repo)
    r = patch(registry, location, data, start=0)
    assert r.status_code == 202
    r = put_upload(registry, r.headers["Location"], digest_of(data))
    assert r.status_code == 201
    assert_blob(registry, repo, digest_of(data), data)


def test_last_chunk_in_put_without_content_range(registry):
    repo = registry.repo()
    data = random_bytes(2048)
    location = start_upload(registry, repo)
    r = patch(registry, location, data[:1000], start=0)
    assert r.status_code == 202
    r = put_upload(registry, r.headers["Location"], digest_of(data), data[1000:])
    assert r.status_code == 201, r.text
    assert_blob(registry, repo, digest_of(data), data)


def test_out_of_order_chunk(registry):
    repo = registry.repo()
    data = random_bytes(2000)
    location = start_upload(registry, repo)
    assert patch(registry, location, data[:1000], start=0).status_code == 202
    r = patch(registry, location, data[1500:], start=1500)
    assert_error(r, 416)
    # the upload is unchanged and can go on
    r = call(registry, "GET", upload_url(location))
    assert r.status_code == 204
    assert r.headers["Range"] == "0-999"
    assert patch(registry, location, data[1000:], start=1000).status_code == 202
    assert put_upload(registry, location, digest_of(data)).status_code == 201
    assert_blob(registry, repo, digest_of(data), data)


def test_first_chunk_not_at_zero(registry):
    location = start_upload(registry, registry.repo())
    assert_error(patch(registry, location, b"abc", start=5), 416)


def test_repeated_chunk(registry):
    repo = registry.repo()
    data = random_bytes(2000)
    location = start_upload(registry, repo)
    assert patch(registry, location, data[:1000], start=0).status_code == 202
    assert_error(patch(registry, location, data[:1000], start=0), 416)
    r = call(registry, "GET", upload_url(location))
    assert r.headers["Range"] == "0-999"


def test_streamed_patch(registry):
    repo = registry.repo()
    data = random_bytes(5000)
    location = start_upload(registry, repo)
    r = call(registry, "PATCH", upload_url(location), data=data[:3000])
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == "0-2999"
    r = call(registry, "PATCH", upload_url(r.headers["Location"]), data=data[3000:])
    assert r.status_code == 202
    assert r.headers["Range"] == "0-4999"
    r = put_upload(registry, r.headers["Location"], digest_of(data))
    assert r.status_code == 201
    assert_blob(registry, repo, digest_of(data), data)


def test_streamed_patch_chunked_encoding(registry):
    """Docker-style streamed PATCHes (Transfer-Encoding: chunked, no Content-Range):
    even small HTTP chunks, then chunks from 1 byte to 5 MiB, which the server takes
    piece by piece as they arrive."""
    repo = registry.repo()
    data = random_bytes(3000)
    location = start_upload(registry, repo)
    body = (data[i : i + 700] for i in range(0, len(data), 700))
    r = call(registry, "PATCH", upload_url(location), data=body)
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == "0-2999"
    more = [random_bytes(1 << 20), b"x", random_bytes(5 << 20), random_bytes(3),
            random_bytes((2 << 20) + 7)]
    for part in (more[:2], more[2:]):
        r = call(registry, "PATCH", upload_url(r.headers["Location"]), data=iter(part))
        assert r.status_code == 202, r.text
    data += b"".join(more)
    assert call(registry, "GET", upload_url(location)).headers["Range"] == f"0-{len(data) - 1}"
    assert put_upload(registry, location, digest_of(data)).status_code == 201
    assert_blob(registry, repo, digest_of(data), data)


def test_put_with_wrong_digest(registry):
    repo = registry.repo()
    data = random_bytes(500)
    wrong = digest_of(b"something else")
    location = start_upload(registry, repo)
    r = put_upload(registry, location, wrong, data)
    assert_error(r, 400, "DIGEST_INVALID")
    for digest in (wrong, digest_of(data)):
        assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 404
        assert_error(call(registry, "GET", f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_put_with_wrong_sha512_digest(registry):
    repo = registry.repo()
    data = random_bytes(500)
    wrong = digest_of(b"something else", "sha512")
    r = put_upload(registry, start_upload(registry, repo), wrong, data)
    assert_error(r, 400, "DIGEST_INVALID")
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{wrong}").status_code == 404


@pytest.mark.parametrize("query", ["", "?digest=", "?digest=sha256:nothex", "?other=1"])
def test_put_without_valid_digest(registry, query):
    repo = registry.repo()
    location = start_upload(registry, repo)
    r = call(registry, "PUT", upload_url(location) + query, data=b"data")
    assert_error(r, 400, "DIGEST_INVALID")
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest_of(b'data')}").status_code == 404


UNKNOWN_UPLOAD = str(uuid.UUID(int=0x1234))


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "upload_id", [UNKNOWN_UPLOAD, "not-a-uuid", "..%2F..%2Fx", "%2e%2e", "a" * 300]
)
def test_unknown_or_malformed_upload_id(registry, method, upload_id):
    repo = registry.repo()
    start_upload(registry, repo)  # the repository exists
    path = f"/v2/{repo}/blobs/uploads/{upload_id}"
    if method == "PUT":
        path += f"?digest={EMPTY_SHA256}"
    r = call(registry, method, path, data=b"" if method in ("GET", "DELETE") else b"x")
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_id_from_other_repository(registry):
    a, b = registry.repo(), registry.repo()
    location = start_upload(registry, a)
    upload_id = upload_url(location).rsplit("/", 1)[1]
    start_upload(registry, b)
    path = f"/v2/{b}/blobs/uploads/{upload_id}"
    assert_error(call(registry, "GET", path), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(call(registry, "PATCH", path, data=b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
    r = call(registry, "PUT", f"{path}?digest={digest_of(b'abc')}", data=b"abc")
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(call(registry, "DELETE", path), 404, "BLOB_UPLOAD_UNKNOWN")
    # the session in its own repository is untouched
    r = call(registry, "GET", upload_url(location))
    assert r.status_code == 204
    assert r.headers["Range"] == "0-0"


def test_cancel_upload(registry):
    repo = registry.repo()
    location = start_upload(registry, repo)
    assert patch(registry, location, b"abc", start=0).status_code == 202
    r = call(registry, "DELETE", upload_url(location))
    assert r.status_code == 204
    assert_error(call(registry, "GET", upload_url(location)), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch(registry, location, b"def", start=3), 404, "BLOB_UPLOAD_UNKNOWN")
    r = put_upload(registry, location, digest_of(b"abc"))
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(call(registry, "DELETE", upload_url(location)), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cancel_during_the_final_put_is_never_a_500(registry):
    """Regression: a DELETE of an upload whose final PUT is still streaming its body
    deleted the data under it, and the PUT answered 500. Now one of the two wins
    cleanly: the PUT publishes the blob and the cancel finds no upload, or the
    cancel wins and the PUT finds none."""
    repo = registry.repo()
    first, last = random_bytes(1 << 20), random_bytes(4 << 20)
    location = start_upload(registry, repo)
    assert patch(registry, location, first, start=0).status_code == 202
    digest = digest_of(first + last)

    streaming = threading.Event()

    def slow_body():
        for i in range(0, len(last), 256 << 10):
            yield last[i:i + (256 << 10)]
            streaming.set()  # a chunk went out: the PUT is streaming its body
            time.sleep(0.05)  # pacing the sender

    results: dict[str, int] = {}

    def final_put():
        url = upload_url(location) + ("&" if "?" in location else "?") + f"digest={digest}"
        results["put"] = call(registry, "PUT", url, data=slow_body()).status_code

    thread = threading.Thread(target=final_put)
    thread.start()
    assert streaming.wait(30)
    results["delete"] = call(registry, "DELETE", upload_url(location)).status_code
    thread.join()
    assert results["put"] in (201, 404) and results["delete"] in (204, 404), results
    assert (results["put"], results["delete"]) in ((201, 404), (404, 204)), results
    if results["put"] == 201:
        assert_blob(registry, repo, digest, first + last)


def test_content_length_not_matching_content_range(registry):
    location = start_upload(registry, registry.repo())
    r = patch(registry, location, b"0123456789", **{"Content-Range": "0-4"})
    assert_error(r, 400, "SIZE_INVALID")
    r = patch(registry, location, b"0123", **{"Content-Range": "0-9"})
    assert_error(r, 400, "SIZE_INVALID")
    # nothing was written
    assert call(registry, "GET", upload_url(location)).headers["Range"] == "0-0"


@pytest.mark.parametrize("value", ["abc", "5-2", "-5", "0-", "bytes=x-y", "0-1-2"])
def test_malformed_content_range(registry, value):
    location = start_upload(registry, registry.repo())
    r = patch(registry, location, b"abc", **{"Content-Range": value})
    assert 400 <= r.status_code < 500
    assert_error(r, r.status_code)
    assert r.status_code in (400, 416)


def test_empty_blob_upload(registry):
    repo = registry.repo()
    r = put_upload(registry, start_upload(registry, repo), EMPTY_SHA256)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{EMPTY_SHA256}"
    assert_blob(registry, repo, EMPTY_SHA256, b"")
    r = call(registry, "POST", f"/v2/{repo}/blobs/uploads/?digest={EMPTY_SHA256}")
    assert r.status_code == 201


def test_sha512_upload_chunked(registry):
    repo = registry.repo()
    data = random_bytes(4000)
    digest = digest_of(data, "sha512")
    location = start_upload(registry, repo)
    assert patch(registry, location, data[:2000], start=0).status_code == 202
    r = put_upload(registry, location, digest, data[2000:], headers={"Content-Range": "2000-3999"})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert_blob(registry, repo, digest, data)


def test_sha512_single_request(registry):
    repo = registry.repo()
    data = random_bytes(100)
    digest = digest_of(data, "sha512")
    r = call(registry, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data)
    assert r.status_code == 201
    assert_blob(registry, repo, digest, data)


def test_upload_of_existing_blob(registry):
    repo = registry.repo()
    data = random_bytes(100)
    digest = digest_of(data)
    for _ in range(2):
        r = put_upload(registry, start_upload(registry, repo), digest, data)
        assert r.status_code == 201
    assert_blob(registry, repo, digest, data)


def test_upload_invalid_name(registry):
    r = call(registry, "POST", "/v2/Bad/blobs/uploads/")
    assert_error(r, 400, "NAME_INVALID")


def test_short_chunked_body_rolls_back(registry):
    repo = registry.repo()
    location = start_upload(registry, repo)
    assert patch(registry, location, b"01234", start=0).status_code == 202
    # Content-Range promises 10 bytes but the chunked body carries 4
    r = call(
        registry,
        "PATCH",
        upload_url(location),
        data=iter([b"56", b"78"]),
        headers={"Content-Range": "5-14"},
    )
    assert_error(r, 400, "SIZE_INVALID")
    assert call(registry, "GET", upload_url(location)).headers["Range"] == "0-4"
    data = b"0123456789"
    assert patch(registry, location, data[5:], start=5).status_code == 202
    assert put_upload(registry, location, digest_of(data)).status_code == 201
    assert_blob(registry, repo, digest_of(data), data)


def test_final_put_with_out_of_order_chunk(registry):
    repo = registry.repo()
    data = random_bytes(100)
    location = start_upload(registry, repo)
    assert patch(registry, location, data[:50], start=0).status_code == 202
    r = put_upload(
        registry, location, digest_of(data), data[60:], headers={"Content-Range": "60-99"}
    )
    assert_error(r, 416)
    assert call(registry, "HEAD", f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404
    r = put_upload(
        registry, location, digest_of(data), data[50:], headers={"Content-Range": "50-99"}
    )
    assert r.status_code == 201
    assert_blob(registry, repo, digest_of(data), data)


@pytest.mark.parametrize("name", ["a" * 255, "ab/" * 84 + "abc", "a-b.c_d__e---f/0"])
def test_longest_and_oddest_valid_names(registry, name):
    assert len(name) <= 255
    data = random_bytes(10)
    digest = digest_of(data)
    r = call(registry, "POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{name}/blobs/{digest}"
    assert_blob(registry, name, digest, data)
