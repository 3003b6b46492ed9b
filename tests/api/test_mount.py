"""Cross-repository blob mounts."""

from __future__ import annotations

import pytest

from .helpers import (
    UNKNOWN_DIGEST,
    assert_error,
    call,
    digest_of,
    push_blob,
    put_upload,
    random_bytes,
    upload_url,
)


def mount(reg, repo, digest, source=None):
    query = f"mount={digest}" + (f"&from={source}" if source is not None else "")
    return call(reg, "POST", f"/v2/{repo}/blobs/uploads/?{query}")


def assert_mounted(reg, repo, digest, data, response):
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    r = call(reg, "GET", f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data


def assert_fell_back_to_upload(reg, repo, digest, response):
    assert response.status_code == 202, response.text
    location = upload_url(response.headers["Location"])
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    assert call(reg, "HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 404
    # the session it opened is a real one
    assert call(reg, "GET", location).status_code == 204
    return location


def test_mount_from(registry):
    data = random_bytes(600)
    source, target = registry.repo("src"), registry.repo("dst")
    digest = push_blob(registry, source, data)
    assert_mounted(registry, target, digest, data, mount(registry, target, digest, source))
    # still in the source too
    assert call(registry, "HEAD", f"/v2/{source}/blobs/{digest}").status_code == 200


def test_mount_nested_names(registry):
    data = random_bytes(60)
    source, target = registry.repo("a/b/c"), registry.repo("x/y")
    digest = push_blob(registry, source, data)
    assert_mounted(registry, target, digest, data, mount(registry, target, digest, source))


def test_mount_sha512(registry):
    data = random_bytes(60)
    source, target = registry.repo(), registry.repo()
    digest = push_blob(registry, source, data, algorithm="sha512")
    assert_mounted(registry, target, digest, data, mount(registry, target, digest, source))


def test_mount_without_from_auto_mount(registry):
    data = random_bytes(200)
    source, target = registry.repo(), registry.repo()
    digest = push_blob(registry, source, data)
    assert_mounted(registry, target, digest, data, mount(registry, target, digest))


def test_mount_unknown_blob_falls_back_to_upload(registry):
    source, target = registry.repo(), registry.repo()
    push_blob(registry, source, random_bytes(10))
    r = mount(registry, target, UNKNOWN_DIGEST, source)
    location = assert_fell_back_to_upload(registry, target, UNKNOWN_DIGEST, r)
    # which can be completed as a normal upload
    data = random_bytes(30)
    assert put_upload(registry, location, digest_of(data), data).status_code == 201
    # without `from` as well
    other = registry.repo()
    r = mount(registry, other, UNKNOWN_DIGEST)
    assert_fell_back_to_upload(registry, other, UNKNOWN_DIGEST, r)


@pytest.mark.parametrize("source", ["Bad", "a//b", "../x", "-a", "a%0D%0Ab", "a" * 300])
def test_mount_from_invalid_name(registry, source):
    data = random_bytes(20)
    target = registry.repo()
    digest = push_blob(registry, registry.repo(), data)
    assert_error(mount(registry, target, digest, source), 400, "NAME_INVALID")
    assert call(registry, "HEAD", f"/v2/{target}/blobs/{digest}").status_code == 404


def test_mount_invalid_digest(registry):
    r = mount(registry, registry.repo(), "sha256:nope", registry.repo())
    assert_error(r, 400, "DIGEST_INVALID")


def test_mount_with_auto_mount_off(registry, start_registry):
    reg = start_registry(config="[storage]\nauto_mount = false\n")
    data = random_bytes(300)
    source, target = reg.repo(), reg.repo()
    digest = push_blob(reg, source, data)
    # without `from` the server must not look for the blob elsewhere
    assert_fell_back_to_upload(reg, target, digest, mount(reg, target, digest))
    # from a repository that does not hold the blob: no mount either
    other = reg.repo()
    push_blob(reg, other, random_bytes(5))
    assert_fell_back_to_upload(reg, target, digest, mount(reg, target, digest, other))
    # an explicit, correct `from` still mounts
    assert_mounted(reg, target, digest, data, mount(reg, target, digest, source))
    assert "Traceback" not in reg.log()
