"""The referrers API: listing, artifactType, annotations, filtering, deletion."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from .helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    UNKNOWN_DIGEST,
    assert_error,
    call,
    descriptor,
    digest_of,
    image_manifest,
    image_parts,
    index_manifest,
    push_artifact,
    push_blob,
    push_image,
    push_manifest,
)

SBOM = "application/vnd.example.sbom+json"
SIG = "application/vnd.example.signature"
CONFIG_TYPE = "application/vnd.example.config.v1+json"


def referrers(reg, repo, digest, artifact_type=None):
    query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else ""
    r = call(reg, "GET", f"/v2/{repo}/referrers/{digest}{query}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == OCI_INDEX
    doc = r.json()
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == OCI_INDEX
    assert isinstance(doc["manifests"], list)
    return doc["manifests"], r.headers


def by_digest(manifests):
    digests = [m["digest"] for m in manifests]
    assert len(digests) == len(set(digests)), manifests
    return {m["digest"]: m for m in manifests}


@pytest.fixture(scope="module")
def graph(registry):
    """An image with four referrers of different kinds."""
    repo = registry.repo()
    subject = push_image(registry, repo, "v1")
    sbom = push_artifact(registry, repo, subject.descriptor, SBOM, {"org.example.a": "1"})
    sig = push_artifact(registry, repo, subject.descriptor, SIG)
    # no artifactType: the config media type stands in for it
    config = b'{"x": 1}'
    push_blob(registry, repo, config)
    _, layers = image_parts(registry, repo)
    plain = push_manifest(
        registry,
        repo,
        image_manifest(descriptor(CONFIG_TYPE, config), layers, subject=subject.descriptor),
    )
    child = push_image(registry, repo)
    idx = push_manifest(
        registry,
        repo,
        index_manifest(
            [child.descriptor],
            subject=subject.descriptor,
            artifact_type=SBOM,
            annotations={"org.example.b": "2"},
        ),
        media_type=OCI_INDEX,
    )
    # an index without artifactType: its descriptor has none either
    bare = push_manifest(
        registry,
        repo,
        index_manifest([child.descriptor], subject=subject.descriptor),
        media_type=OCI_INDEX,
    )
    pushed = {"sbom": sbom, "sig": sig, "plain": plain, "index": idx, "bare": bare}
    return repo, subject, pushed


def test_unknown_subject_gives_empty_index(registry, graph):
    repo, _, _ = graph
    manifests, headers = referrers(registry, repo, UNKNOWN_DIGEST)
    assert manifests == []
    assert "OCI-Filters-Applied" not in headers


def test_unknown_repository_gives_empty_index(registry):
    manifests, _ = referrers(registry, registry.repo(), UNKNOWN_DIGEST)
    assert manifests == []


def test_lists_every_referrer(registry, graph):
    repo, subject, pushed = graph
    manifests, headers = referrers(registry, repo, subject.digest)
    found = by_digest(manifests)
    assert set(found) == {p.digest for p in pushed.values()}
    assert "OCI-Filters-Applied" not in headers
    for p in pushed.values():
        entry = found[p.digest]
        assert entry["mediaType"] == p.media_type
        assert entry["size"] == len(p.body)
    assert found[pushed["sbom"].digest]["artifactType"] == SBOM
    assert found[pushed["sbom"].digest]["annotations"] == {"org.example.a": "1"}
    assert found[pushed["sig"].digest]["artifactType"] == SIG
    assert not found[pushed["sig"].digest].get("annotations")
    assert found[pushed["plain"].digest]["artifactType"] == CONFIG_TYPE
    assert found[pushed["index"].digest]["mediaType"] == OCI_INDEX
    assert found[pushed["index"].digest]["artifactType"] == SBOM
    assert found[pushed["index"].digest]["annotations"] == {"org.example.b": "2"}
    assert "artifactType" not in found[pushed["bare"].digest]


def test_filter_by_artifact_type(registry, graph):
    repo, subject, pushed = graph
    manifests, headers = referrers(registry, repo, subject.digest, SBOM)
    assert headers["OCI-Filters-Applied"] == "artifactType"
    assert set(by_digest(manifests)) == {pushed["sbom"].digest, pushed["index"].digest}
    manifests, headers = referrers(registry, repo, subject.digest, CONFIG_TYPE)
    assert headers["OCI-Filters-Applied"] == "artifactType"
    assert set(by_digest(manifests)) == {pushed["plain"].digest}


def test_filter_without_match(registry, graph):
    repo, subject, _ = graph
    manifests, headers = referrers(registry, repo, subject.digest, "application/vnd.none")
    assert manifests == []
    assert headers["OCI-Filters-Applied"] == "artifactType"


def test_referrers_are_per_repository(registry, graph):
    repo, subject, pushed = graph
    other = registry.repo()
    assert referrers(registry, other, subject.digest)[0] == []
    art = push_artifact(registry, other, subject.descriptor, SIG)
    assert [m["digest"] for m in referrers(registry, other, subject.digest)[0]] == [art.digest]
    mine = by_digest(referrers(registry, repo, subject.digest)[0])
    assert set(mine) == {p.digest for p in pushed.values()}


def test_referrer_pushed_before_subject(registry):
    repo = registry.repo()
    config, layers = image_parts(registry, repo)
    body = json.dumps(image_manifest(config, layers)).encode()
    subject_desc = {"mediaType": OCI_MANIFEST, "digest": digest_of(body), "size": len(body)}
    art = push_artifact(registry, repo, subject_desc, SIG)
    assert [m["digest"] for m in referrers(registry, repo, subject_desc["digest"])[0]] == [
        art.digest
    ]
    push_manifest(registry, repo, body, "v1")
    assert [m["digest"] for m in referrers(registry, repo, subject_desc["digest"])[0]] == [
        art.digest
    ]


def test_same_referrer_pushed_twice_is_listed_once(registry):
    repo = registry.repo()
    subject = push_image(registry, repo, "v1")
    art = push_artifact(registry, repo, subject.descriptor, SIG, tag="sig")
    push_manifest(registry, repo, art.body, "sig2")
    push_manifest(registry, repo, art.body)
    manifests, _ = referrers(registry, repo, subject.digest)
    assert [m["digest"] for m in manifests] == [art.digest]


def test_delete_referrer(registry):
    repo = registry.repo()
    subject = push_image(registry, repo, "v1")
    keep = push_artifact(registry, repo, subject.descriptor, SBOM)
    gone = push_artifact(registry, repo, subject.descriptor, SIG, tag="sig")
    assert len(referrers(registry, repo, subject.digest)[0]) == 2
    assert call(registry, "DELETE", f"/v2/{repo}/manifests/{gone.digest}").status_code == 202
    manifests, _ = referrers(registry, repo, subject.digest)
    assert [m["digest"] for m in manifests] == [keep.digest]
    manifests, _ = referrers(registry, repo, subject.digest, SIG)
    assert manifests == []


def test_deleting_referrer_tag_keeps_it(registry):
    repo = registry.repo()
    subject = push_image(registry, repo, "v1")
    art = push_artifact(registry, repo, subject.descriptor, SIG, tag="sig")
    assert call(registry, "DELETE", f"/v2/{repo}/manifests/sig").status_code == 202
    assert [m["digest"] for m in referrers(registry, repo, subject.digest)[0]] == [art.digest]


def test_sha512_subject(registry):
    repo = registry.repo()
    subject = {"mediaType": OCI_MANIFEST, "digest": "sha512:" + "ab" * 64, "size": 12}
    art = push_artifact(registry, repo, subject, SIG)
    assert [m["digest"] for m in referrers(registry, repo, subject["digest"])[0]] == [art.digest]


@pytest.mark.parametrize(
    "digest", ["sha256:totallywrong", "latest", "sha256:" + "A" * 64, "md5:abc", "sha256:"]
)
def test_invalid_digest(registry, graph, digest):
    repo, _, _ = graph
    r = call(registry, "GET", f"/v2/{repo}/referrers/{digest}")
    assert_error(r, 400, "DIGEST_INVALID")


def test_invalid_name(registry):
    r = call(registry, "GET", f"/v2/Bad/referrers/{UNKNOWN_DIGEST}")
    assert_error(r, 400, "NAME_INVALID")
