"""Image-compatibility artifacts over the OCI API: a valid one is stored and listed as a
referrer, and a build whose artifact does not hold on a host does not fit it in
`/api/v1/resolve`; a hostile or invalid spec layer gets 400 MANIFEST_INVALID with the
reason, and nothing changes (no manifest, no referrer listed)."""

from __future__ import annotations

import json

import pytest
from harness import wait_for

from .helpers import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    call,
    descriptor,
    digest_of,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    push_manifest,
    put_manifest,
)
from .test_resolve import push_child

OCI_COMPAT = "application/vnd.oci.image-compatibility.v1"
OCI_SPEC = "application/vnd.oci.image-compatibility.spec.v1+json"
NFD_COMPAT = "application/vnd.nfd.image-compatibility.v1alpha1"
NFD_SPEC = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
VALID = json.dumps({"compatibilities": [
    {"oci.cpu.vendor": "GenuineIntel", "oci.kernel.versions": "[4.19, 5.16)",
     "compatibility-score": 50}]}).encode()


def compat_manifest(reg, repo: str, subject: dict, kind: str, layer_type: str,
                    spec: bytes) -> dict:
    push_blob(reg, repo, b"{}")
    push_blob(reg, repo, spec)
    return image_manifest(descriptor(OCI_EMPTY, b"{}"), [descriptor(layer_type, spec)],
                          subject=subject, artifact_type=kind)


def listed(reg, repo: str, subject: str) -> list[str]:
    r = call(reg, "GET", f"/v2/{repo}/referrers/{subject}")
    assert r.status_code == 200, r.text
    return [m["digest"] for m in r.json()["manifests"]]


@pytest.fixture(scope="module")
def subject(registry):
    repo = registry.repo("compat")
    return repo, push_image(registry, repo, "v1")


def test_a_valid_artifact_is_stored_and_listed(registry, subject) -> None:
    repo, image = subject
    doc = compat_manifest(registry, repo, image.descriptor, OCI_COMPAT, OCI_SPEC, VALID)
    pushed = push_manifest(registry, repo, doc)
    assert pushed.digest in listed(registry, repo, image.digest)


def test_resolve_excludes_a_build_whose_artifact_fails_on_the_host(registry) -> None:
    repo = registry.repo("compat")
    v3 = push_child(registry, repo)
    generic = push_child(registry, repo)
    amd64 = {"os": "linux", "architecture": "amd64"}
    push_manifest(registry, repo, index_manifest([{**v3, "platform": {**amd64, "variant": "v3"}},
                                                  {**generic, "platform": amd64}]),
                  "latest", OCI_INDEX)
    push_manifest(registry, repo, compat_manifest(registry, repo, v3, OCI_COMPAT, OCI_SPEC,
                                                  VALID))

    def resolved(query: str) -> dict:
        r = call(registry, "GET", f"/api/v1/resolve/{repo}:latest?{query}")
        assert r.status_code == 200, r.text
        return r.json()

    # The index applies the artifact off the request path: poll until it counts.
    body = wait_for(lambda: resolved("target=zen3"),
                    lambda b: b["digest"] == generic["digest"])
    assert body["digest"] == generic["digest"], body
    [excluded] = [c for c in body["candidates"] if c["digest"] == v3["digest"]]
    assert not excluded["fits"] and excluded["rank"] is None
    assert "needs CPU vendor GenuineIntel, the host's is AuthenticAMD" in excluded["reason"]
    body = resolved("target=icelake&kernel=5.10")
    assert body["digest"] == v3["digest"]
    assert "kernel 5.10 in [4.19, 5.16)" in body["candidates"][0]["reason"]
    # The OCI path asks the same resolver.
    for host, child in (("target=zen3", generic), ("target=icelake", v3)):
        r = call(registry, "HEAD", f"/v2/{repo}/manifests/latest",
                 headers={"Registry-Host": host})
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == child["digest"]


@pytest.mark.parametrize(("kind", "layer_type", "spec", "words"), [
    (OCI_COMPAT, OCI_SPEC, b"[" * 3000 + b"]" * 3000, "nested deeper"),
    (OCI_COMPAT, OCI_SPEC, b'{"compatibilities": [{"oci.os.glibc": ["2.31"]}]}', "not a string"),
    (OCI_COMPAT, OCI_SPEC, b"\x00not json", "not JSON"),
    (OCI_COMPAT, OCI_SPEC, b" " * (65 << 10), "more than the 65536 accepted"),
    (NFD_COMPAT, NFD_SPEC, b"a: &a [x]\nb: [*a, *a]\n", "aliases"),
    (NFD_COMPAT, "application/vnd.oci.image.layer.v1.tar", VALID, "exactly one"),
], ids=["deep", "wrong-type", "not-json", "oversize", "yaml-alias", "no-spec-layer"])
def test_hostile_specs_are_refused_and_change_nothing(registry, subject, kind, layer_type,
                                                      spec, words) -> None:
    repo, image = subject
    before = listed(registry, repo, image.digest)
    doc = compat_manifest(registry, repo, image.descriptor, kind, layer_type, spec)
    body = json.dumps(doc).encode()
    r = put_manifest(registry, repo, digest_of(body), body, OCI_MANIFEST)
    err = assert_error(r, 400, "MANIFEST_INVALID")["errors"][0]
    assert words in err["message"], err
    assert call(registry, "GET", f"/v2/{repo}/manifests/{digest_of(body)}").status_code == 404
    assert listed(registry, repo, image.digest) == before
