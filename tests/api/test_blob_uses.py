"""`GET /api/v1/blobs/<digest>`: where a blob is used (repositories, manifests with their
tags, platforms with their targets) and the bytes each platform shares with the others,
only within the repositories the caller may pull."""

from __future__ import annotations

import json

import pytest
from harness import wait_for
from pushing import OCI_INDEX, OCI_MANIFEST, descriptor, image_config, push_image, put_manifest

from registry.auth.passwords import hash_password

from .helpers import UNKNOWN_DIGEST, call

PASSWORDS = {"writer": "writer-pw-1", "reader": "reader-pw-2"}
ZEN3 = {"io.github.registry.arch.target": "zen3"}


@pytest.fixture(scope="module")
def users() -> str:
    return ", ".join(json.dumps(f"{name}:{hash_password(pw)}")
                     for name, pw in PASSWORDS.items())


def uses(reg, digest: str, who: str | None) -> tuple[int, dict]:
    r = call(reg, "GET", f"/api/v1/blobs/{digest}",
             auth=(who, PASSWORDS[who]) if who else None)
    return r.status_code, r.json()


def test_blob_uses_within_the_repositories_the_caller_may_pull(start_registry, users, driver):
    if driver not in ("memory", "external"):
        pytest.skip("the answer comes from the index alone: one driver is enough")
    reg = start_registry(config=(
        f'[auth]\nmode = "token"\naudit_log = ""\nusers = [{users}]\n'
        'rules = ["* user:writer pull,push,delete", "pub/* user:reader pull"]\n'))
    w = ("writer", PASSWORDS["writer"])
    shared, amd_only, arm_only, secret = (b"shared " * 100, b"amd64 " * 10, b"arm64 " * 20,
                                          b"secret " * 30)
    amd = push_image(reg, "pub/app", "amd", [shared, amd_only], auth=w, annotations=ZEN3,
                     config=image_config("amd64", variant="v3"))
    arm = push_image(reg, "pub/app", "arm", [shared, arm_only], auth=w,
                     config=image_config("arm64"))
    index = put_manifest(reg, "pub/app", "latest", {
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            descriptor(OCI_MANIFEST, amd.manifest,
                       platform={"os": "linux", "architecture": "amd64", "variant": "v3"}),
            descriptor(OCI_MANIFEST, arm.manifest,
                       platform={"os": "linux", "architecture": "arm64"})]},
        OCI_INDEX, auth=w)
    # Where the reader may not look: an arm64 image naming amd64's own layer, and a
    # layer of its own.
    hidden = push_image(reg, "secret/app", "v1", [amd_only, secret], auth=w,
                        config=image_config("arm64", note="hidden"))

    status, body = wait_for(lambda: uses(reg, amd.blobs[1], "reader"),
                            lambda got: len(got[1].get("manifests", [])) == 2)
    assert status == 200, body
    assert body["digest"] == amd.blobs[1] and body["size"] == len(shared)
    assert body["repositories"] == ["pub/app"] and body["truncated"] is False
    by_digest = {m["digest"]: m for m in body["manifests"]}
    assert set(by_digest) == {amd.digest, arm.digest}
    m = by_digest[amd.digest]
    assert (m["repository"], m["tags"], m["mediaType"]) == ("pub/app", ["amd"], OCI_MANIFEST)
    assert m["indexes"] == [{"digest": index, "tags": ["latest"]}]
    own, listed = m["platforms"]
    assert (own["source"], own["architecture"], own["variant"], own["target"]) == \
        ("config", "amd64", "v3", "zen3")
    assert (listed["source"], listed["declared_by"], listed["target"]) == \
        ("index", index, "x86_64_v3")
    assert by_digest[arm.digest]["platforms"][0]["target"] == "aarch64"
    amd_bytes = sum(len(b) for b in [image_config("amd64", variant="v3"), shared, amd_only])
    arm_bytes = sum(len(b) for b in [image_config("arm64"), shared, arm_only])
    assert body["architectures"] == [
        {"os": "linux", "architecture": "amd64", "variant": "v3", "target": "zen3",
         "manifests": 1, "bytes": amd_bytes, "shared": len(shared)},
        {"os": "linux", "architecture": "arm64", "variant": "", "target": "aarch64",
         "manifests": 1, "bytes": arm_bytes, "shared": len(shared)},
    ]

    # The writer sees secret/app too: amd64's own layer is shared with an arm64 image there.
    status, body = wait_for(lambda: uses(reg, amd.blobs[2], "writer"),
                            lambda got: len(got[1].get("manifests", [])) == 2)
    assert status == 200 and body["repositories"] == ["pub/app", "secret/app"]
    [amd64] = [a for a in body["architectures"] if a["architecture"] == "amd64"]
    assert amd64["shared"] == len(shared) + len(amd_only)
    # ...the reader does not: the same blob, shared with nothing it may see.
    status, body = uses(reg, amd.blobs[2], "reader")
    assert status == 200 and body["repositories"] == ["pub/app"]
    assert [a["shared"] for a in body["architectures"]] == [len(shared)]

    # A blob only in a repository the reader may not pull is unknown to it, as a digest
    # the registry never saw; the writer gets it.
    assert uses(reg, hidden.blobs[2], "writer")[0] == 200
    for digest in (hidden.blobs[2], UNKNOWN_DIGEST):
        status, body = uses(reg, digest, "reader")
        assert (status, body["title"]) == (404, "BLOB_UNKNOWN"), body
    status, body = uses(reg, "sha256:nothex", "reader")
    assert (status, body["title"]) == (400, "DIGEST_INVALID"), body
    assert uses(reg, amd.blobs[1], None)[0] == 401  # anonymous: log in first
