import json

import pytest

from registry.core.errors import ManifestInvalid
from registry.core.grammar import Digest
from registry.core.manifest_format import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
)

D1 = str(Digest.of(b"1"))
D2 = str(Digest.of(b"2"))


def desc(digest=D1, size=1, media_type="application/vnd.oci.image.layer.v1.tar+gzip", **kw):
    return {"mediaType": media_type, "digest": digest, "size": size, **kw}


def image(**kw):
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": desc(D2, media_type="application/vnd.oci.image.config.v1+json"),
           "layers": [desc()]}
    doc.update(kw)
    return json.dumps(doc).encode()


def test_oci_image():
    m = parse_manifest(image(), OCI_MANIFEST)
    assert m.media_type == OCI_MANIFEST and not m.is_index
    assert [str(d.digest) for d in m.blobs] == [D2, D1]
    assert m.effective_artifact_type == "application/vnd.oci.image.config.v1+json"


def test_artifact_type_wins_over_config():
    m = parse_manifest(image(artifactType="application/x.sig",
                             config=desc(D2, media_type=OCI_EMPTY)), OCI_MANIFEST)
    assert m.effective_artifact_type == "application/x.sig"


def test_subject_and_annotations():
    m = parse_manifest(image(subject=desc(D1, media_type=OCI_MANIFEST),
                             annotations={"a": "b"}), OCI_MANIFEST)
    assert str(m.subject.digest) == D1 and m.annotations == {"a": "b"}


def test_index_with_platforms():
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        desc(D1, media_type=OCI_MANIFEST, platform={"os": "linux", "architecture": "amd64"}),
        desc(D2, media_type=OCI_MANIFEST,
             platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ]}
    m = parse_manifest(json.dumps(doc).encode(), OCI_INDEX)
    assert m.is_index and len(m.manifests) == 2 and m.blobs == []
    assert m.manifests[1].platform["variant"] == "v8"
    assert m.effective_artifact_type is None


def test_docker_types():
    doc = json.loads(image())
    doc["mediaType"] = DOCKER_MANIFEST
    assert parse_manifest(json.dumps(doc).encode(), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    lst = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": []}
    assert parse_manifest(json.dumps(lst).encode(), DOCKER_LIST).is_index


def test_media_type_inferred_without_declaration():
    doc = json.loads(image())
    del doc["mediaType"]
    assert parse_manifest(json.dumps(doc).encode(), OCI_MANIFEST).media_type == OCI_MANIFEST
    assert parse_manifest(json.dumps(doc).encode(), None).media_type == OCI_MANIFEST


@pytest.mark.parametrize("data,content_type", [
    (b"not json", OCI_MANIFEST),
    (b"[]", OCI_MANIFEST),
    (b"[" * 100_000, OCI_MANIFEST),
    (b"\xff\xfe", OCI_MANIFEST),
    (image(schemaVersion=1), OCI_MANIFEST),
    (image(schemaVersion="2"), OCI_MANIFEST),
    (image(), OCI_INDEX),  # header and mediaType disagree
    (image(mediaType="application/vnd.docker.distribution.manifest.v1+json"), None),
    (image(config=None), OCI_MANIFEST),
    (image(config=desc(size=-1)), OCI_MANIFEST),
    (image(config=desc(size=1.5)), OCI_MANIFEST),
    (image(config=desc(size=True)), OCI_MANIFEST),
    (image(config=desc(digest="sha256:bad")), OCI_MANIFEST),
    (image(config=desc(media_type="nope")), OCI_MANIFEST),
    (image(config=desc(media_type="a/b\r\nX: y")), OCI_MANIFEST),
    (image(layers={"a": 1}), OCI_MANIFEST),
    (image(layers=[1]), OCI_MANIFEST),
    (image(annotations={"a": 1}), OCI_MANIFEST),
    (image(artifactType="bad"), OCI_MANIFEST),
    (image(subject="x"), OCI_MANIFEST),
    (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(), OCI_INDEX),
    (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [desc(platform={"os": 1})]}).encode(), OCI_INDEX),
])
def test_invalid(data, content_type):
    with pytest.raises(ManifestInvalid):
        parse_manifest(data, content_type)
