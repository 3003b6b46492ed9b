"""Regression: deleting a referrer whose manifest bytes cannot be read at that moment.

The delete used to swallow the read error and keep the referrer link, so the
deleted manifest was listed by its subject's referrers API again (here: as soon
as the same bytes were pushed to another repository). The revision link now
records the subject, so a delete never needs the bytes; links written before
that are found by their name in the referrers tree."""

from __future__ import annotations

import json

import pytest
from api.helpers import (
    OCI_EMPTY,
    call,
    descriptor,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
)

ARTIFACT = "application/vnd.example.sbom+json"


def _referrers(reg, repo, subject) -> list[str]:
    r = call(reg, "GET", f"/v2/{repo}/referrers/{subject}")
    assert r.status_code == 200, r.text
    return [m["digest"] for m in r.json()["manifests"]]


@pytest.mark.parametrize("legacy_link", [False, True])
def test_deleted_referrer_never_comes_back(start_registry, tmp_path, legacy_link):
    reg = start_registry(tmp_path)
    subject = push_image(reg, "app/one")
    layer = random_bytes(64)
    doc = image_manifest(descriptor(OCI_EMPTY, b"{}"),
                         [descriptor("application/octet-stream", layer)],
                         subject=subject.descriptor, artifact_type=ARTIFACT)
    for repo in ("app/one", "app/two"):
        push_blob(reg, repo, b"{}")
        push_blob(reg, repo, layer)
    referrer = push_manifest(reg, "app/one", doc)
    assert _referrers(reg, "app/one", subject.digest) == [referrer.digest]
    reg.stop()

    # The referrer's bytes are gone (lost, or not yet back after a restore)...
    hexd = referrer.digest.split(":")[1]
    storage = tmp_path / "data" / "storage"
    (storage / "blobs" / "sha256" / hexd[:2] / hexd).unlink()
    if legacy_link:  # ...and its revision link predates the recorded subject.
        link = storage / "repositories/app/one/_manifests/revisions/sha256" / hexd
        doc_link = json.loads(link.read_bytes())
        doc_link.pop("subject", None)
        link.write_text(json.dumps(doc_link))

    reg = start_registry(tmp_path)
    r = call(reg, "DELETE", f"/v2/app/one/manifests/{referrer.digest}")
    assert r.status_code == 202, r.text
    assert _referrers(reg, "app/one", subject.digest) == []
    # The same bytes pushed elsewhere must not resurrect it in app/one.
    push_manifest(reg, "app/two", doc)
    assert _referrers(reg, "app/one", subject.digest) == []
    assert _referrers(reg, "app/two", subject.digest) == [referrer.digest]
