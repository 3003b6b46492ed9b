"""GET/HEAD /v2/, methods that are not allowed, and paths that name no endpoint."""

from __future__ import annotations

import pytest

from .helpers import assert_error, call, push_image


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


def test_outside_v2_is_404(registry):
    r = call(registry, "GET", "/v3/")
    assert r.status_code == 404
