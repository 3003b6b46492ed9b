"""GET/HEAD /v2/, methods that are not allowed, and paths that name no endpoint."""

from __future__ import annotations

import json
import socket

import pytest

from .helpers import assert_error, call, digest_of, push_image, random_bytes, raw


def test_base_get(registry):
    r = call(registry, "GET", "/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {}


def test_base_without_trailing_slash(registry):
    r = call(registry, "GET", "/v2")
    assert r.status_code == 200
    assert r.json() == {}


def test_base_head(registry):
    r = call(registry, "HEAD", "/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert r.content == b""


def test_api_version_header_on_errors(registry):
    r = call(registry, "GET", f"/v2/{registry.repo()}/manifests/latest")
    assert_error(r, 404, "MANIFEST_UNKNOWN")
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v2/"),
        ("POST", "/v2/"),
        ("DELETE", "/v2/"),
        ("POST", "/v2/{repo}/manifests/x"),
        ("PATCH", "/v2/{repo}/manifests/x"),
        ("POST", "/v2/{repo}/blobs/sha256:" + "a" * 64),
        ("PUT", "/v2/{repo}/blobs/sha256:" + "a" * 64),
        ("PUT", "/v2/{repo}/tags/list"),
        ("DELETE", "/v2/{repo}/tags/list"),
        ("POST", "/v2/_catalog"),
        ("DELETE", "/v2/{repo}/referrers/sha256:" + "a" * 64),
        ("GET", "/v2/{repo}/blobs/uploads/"),
        ("POST", "/v2/{repo}/blobs/uploads/00000000-0000-4000-8000-000000000000"),
    ],
)
def test_method_not_allowed(registry, method, path):
    r = call(registry, method, path.format(repo=registry.repo()))
    assert_error(r, 405, "UNSUPPORTED")


def test_method_not_allowed_on_existing_manifest(registry):
    repo = registry.repo()
    push_image(registry, repo, "v1")
    r = call(registry, "POST", f"/v2/{repo}/manifests/v1", data=b"{}")
    assert_error(r, 405, "UNSUPPORTED")
    assert call(registry, "GET", f"/v2/{repo}/manifests/v1").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2/nothing",
        "/v2/{repo}",
        "/v2/{repo}/",
        "/v2/{repo}/unknown/thing",
        "/v2/{repo}/manifests/",
        "/v2/{repo}/blobs/",
        "/v2/{repo}/tags",
        "/v2/{repo}/tags/lists",
        "/v2/_catalog/extra",
    ],
)
def test_unknown_path_is_json_404(registry, path):
    r = call(registry, "GET", path.format(repo=registry.repo()))
    assert_error(r, 404)


@pytest.mark.parametrize("path", ["/v3/", "/favicon.ico"])
def test_outside_v2_is_404(registry, path):
    r = call(registry, "GET", path)
    assert_error(r, 404)
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_absolute_form_request_target(registry):
    """RFC 9112 3.2.2: a server must accept an absolute URI as the request target."""
    r = raw(registry, "GET", f"http://{registry.host}/v2/")
    assert r.status == 200 and r.json() == {}
    r = raw(registry, "GET", f"http://{registry.host}/v2/{registry.repo()}/tags/list")
    assert_error(r, 404, "NAME_UNKNOWN")


def _send_expecting(registry, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    """Send a request's head with Expect: 100-continue and wait for the interim
    response before sending the body, as curl and Go's client can. Returns the
    interim answer and the final response."""
    host, port = registry.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(4096)
            if not chunk:
                break
            interim += chunk
        if not interim.startswith(b"HTTP/1.1 100"):
            return interim, b""  # answered without the body (that is never sent)
        sock.sendall(body)
        final = interim.split(b"\r\n\r\n", 1)[1]
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            final += chunk
    return interim, final


def test_expect_100_continue_on_upload(registry):
    repo = registry.repo()
    data = random_bytes(3 << 20)
    digest = digest_of(data)
    head = (f"POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\n"
            f"Host: {registry.host}\r\nContent-Length: {len(data)}\r\n"
            "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode()
    interim, final = _send_expecting(registry, head, data)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert final.startswith(b"HTTP/1.1 201"), final[:300]
    r = call(registry, "GET", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200 and r.content == data


def test_expect_refused_before_the_body_on_a_bad_route(registry):
    """A request that cannot succeed is answered at once, without inviting the body."""
    head = (f"POST /v2/{registry.repo()}/manifests/x HTTP/1.1\r\nHost: {registry.host}\r\n"
            "Content-Length: 100000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            ).encode()
    interim, _ = _send_expecting(registry, head, b"")
    assert interim.startswith(b"HTTP/1.1 405"), interim[:200]


def test_unknown_expectation_is_417(registry):
    r = raw(registry, "POST", f"/v2/{registry.repo()}/blobs/uploads/",
            {"Expect": "something-else"})
    assert_error(r, 417, "UNSUPPORTED")


def test_api_version_header_on_every_kind_of_response(registry):
    """Streamed responses (blob bodies, manifest HEAD) send their headers inside the
    handler, the others after it: both paths must carry the header."""
    repo = registry.repo()
    pushed = push_image(registry, repo, "v1")
    layer = json.loads(pushed.body)["layers"][0]["digest"]
    responses = [
        call(registry, "GET", f"/v2/{repo}/blobs/{layer}"),
        call(registry, "GET", f"/v2/{repo}/blobs/{layer}", headers={"Range": "bytes=0-3"}),
        call(registry, "HEAD", f"/v2/{repo}/blobs/{layer}"),
        call(registry, "HEAD", f"/v2/{repo}/manifests/v1"),
        call(registry, "GET", f"/v2/{repo}/manifests/v1"),
        call(registry, "GET", f"/v2/{repo}/tags/list"),
        call(registry, "POST", f"/v2/{repo}/blobs/uploads/"),
    ]
    for r in responses:
        assert r.status_code < 300, (r.request.method, r.url, r.status_code)
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0", r.url
