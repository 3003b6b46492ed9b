"""Image-compatibility artifacts over the OCI API: a valid one is stored and listed as a
referrer; a hostile or invalid spec layer gets 400 MANIFEST_INVALID with the reason,
and nothing changes (no manifest, no referrer listed)."""

from __future__ import annotations

import json

import pytest

from .helpers import (
    OCI_EMPTY,
    OCI_MANIFEST,
    assert_error,
    call,
    descriptor,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    put_manifest,
)

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
