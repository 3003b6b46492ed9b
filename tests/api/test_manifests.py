"""Manifest PUT, GET, HEAD and DELETE for every supported manifest type."""

from __future__ import annotations

import json

import pytest

from .helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    UNKNOWN_DIGEST,
    assert_error,
    call,
    descriptor,
    digest_of,
    image_manifest,
    image_parts,
    index_manifest,
    odd_json,
    padded,
    push_artifact,
    push_blob,
    push_image,
    push_manifest,
    put_manifest,
    random_bytes,
)


def build_oci_image(reg, repo):
    config, layers = image_parts(reg, repo, layers=2)
    return image_manifest(config, layers), OCI_MANIFEST


def build_oci_image_without_media_type(reg, repo):
    config, layers = image_parts(reg, repo)
    return image_manifest(config, layers, media_type=None), OCI_MANIFEST


def build_oci_index(reg, repo):
    children = [push_image(reg, repo).descriptor for _ in range(2)]
    children[0]["platform"] = {"architecture": "amd64", "os": "linux"}
    return index_manifest(children), OCI_INDEX


def build_docker_manifest(reg, repo):
    config, layers = image_parts(reg, repo, docker=True)
    return image_manifest(config, layers, media_type=DOCKER_MANIFEST), DOCKER_MANIFEST


def build_docker_list(reg, repo):
    children = []
    for arch in ("amd64", "arm64"):
        doc, media_type = build_docker_manifest(reg, repo)
        child = push_manifest(reg, repo, doc, media_type=media_type).descriptor
        children.append({**child, "platform": {"architecture": arch, "os": "linux"}})
    return index_manifest(children, media_type=DOCKER_LIST), DOCKER_LIST


def build_artifact(reg, repo):
    push_blob(reg, repo, b"{}")
    layer = random_bytes(50)
    push_blob(reg, repo, layer)
    doc = image_manifest(
        descriptor(OCI_EMPTY, b"{}"),
        [descriptor("application/vnd.example.thing", layer)],
        artifact_type="application/vnd.example.sbom+json",
        annotations={"org.example.k": "v"},
    )
    return doc, OCI_MANIFEST


BUILDERS = [
    build_oci_image,
    build_oci_image_without_media_type,
    build_oci_index,
    build_docker_manifest,
    build_docker_list,
    build_artifact,
]


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__[6:])
def test_push_and_pull_exact_bytes(registry, build):
    repo = registry.repo()
    doc, media_type = build(registry, repo)
    body = odd_json(doc)
    assert json.loads(body) == doc and body != json.dumps(doc).encode()
    digest = digest_of(body)
    r = put_manifest(registry, repo, "v1.0", body, media_type)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Location"] in (
        f"/v2/{repo}/manifests/{digest}",
        f"/v2/{repo}/manifests/v1.0",
    )
    for ref in ("v1.0", digest):
        r = call(registry, "GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": media_type})
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["Content-Type"] == media_type
        assert r.headers["Docker-Content-Digest"] == digest
        r = call(registry, "HEAD", f"/v2/{repo}/manifests/{ref}")
        assert r.status_code == 200
        assert r.content == b""
        assert int(r.headers["Content-Length"]) == len(body)
        assert r.headers["Content-Type"] == media_type
        assert r.headers["Docker-Content-Digest"] == digest


def test_content_type_from_body_when_header_missing(registry):
    repo = registry.repo()
    doc, _ = build_docker_manifest(registry, repo)
    body = json.dumps(doc).encode()
    r = put_manifest(registry, repo, "t", body, media_type=None)
    assert r.status_code == 201, r.text
    r = call(registry, "GET", f"/v2/{repo}/manifests/t")
    assert r.content == body
    assert r.headers["Content-Type"] == DOCKER_MANIFEST


def test_put_by_digest(registry):
    repo = registry.repo()
    doc, media_type = build_oci_image(registry, repo)
    body = odd_json(doc)
    digest = digest_of(body)
    r = put_manifest(registry, repo, digest, body, media_type)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v2/{repo}/manifests/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert call(registry, "GET", f"/v2/{repo}/manifests/{digest}").content == body
    # a digest push creates no tag
    r = call(registry, "GET", f"/v2/{repo}/tags/list")
    assert r.status_code == 200 and r.json()["tags"] == []


def test_put_by_sha512_digest(registry):
    repo = registry.repo()
    doc, media_type = build_oci_image(registry, repo)
    body = json.dumps(doc).encode()
    digest = digest_of(body, "sha512")
    r = put_manifest(registry, repo, digest, body, media_type)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    r = call(registry, "GET", f"/v2/{repo}/manifests/{digest}")
    assert r.status_code == 200
    assert r.content == body


def test_put_by_wrong_digest(registry):
    repo = registry.repo()
    doc, media_type = build_oci_image(registry, repo)
    body = json.dumps(doc).encode()
    wrong = digest_of(body + b" ")
    assert_error(put_manifest(registry, repo, wrong, body, media_type), 400, "DIGEST_INVALID")
    for ref in (wrong, digest_of(body)):
        assert_error(call(registry, "GET", f"/v2/{repo}/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")


def test_put_by_invalid_digest(registry):
    repo = registry.repo()
    doc, media_type = build_oci_image(registry, repo)
    r = put_manifest(registry, repo, "sha256:totallywrong", doc, media_type)
    assert_error(r, 400, "DIGEST_INVALID")


def test_missing_config_blob(registry):
    repo = registry.repo()
    config, layers = image_parts(registry, repo)
    config = descriptor(config["mediaType"], b"never pushed")
    r = put_manifest(registry, repo, "t", image_manifest(config, layers))
    assert_error(r, 404, "MANIFEST_BLOB_UNKNOWN")
    assert_error(call(registry, "GET", f"/v2/{repo}/manifests/t"), 404, "MANIFEST_UNKNOWN")


def test_missing_layer_blob(registry):
    repo = registry.repo()
    config, layers = image_parts(registry, repo)
    layers.append(descriptor(OCI_LAYER, b"never pushed"))
    r = put_manifest(registry, repo, "t", image_manifest(config, layers))
    assert_error(r, 404, "MANIFEST_BLOB_UNKNOWN")


def test_layer_only_in_another_repository(registry):
    repo, other = registry.repo(), registry.repo()
    config, _ = image_parts(registry, repo)
    data = random_bytes(99)
    push_blob(registry, other, data)
    r = put_manifest(registry, repo, "t", image_manifest(config, [descriptor(OCI_LAYER, data)]))
    assert_error(r, 404, "MANIFEST_BLOB_UNKNOWN")


def test_docker_manifest_missing_blob(registry):
    repo = registry.repo()
    doc, media_type = build_docker_manifest(registry, repo)
    doc["layers"][0] = {**doc["layers"][0], "digest": UNKNOWN_DIGEST}
    assert_error(put_manifest(registry, repo, "t", doc, media_type), 404, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_with_missing_child(registry, media_type):
    repo = registry.repo()
    present = push_image(registry, repo).descriptor
    missing = {"mediaType": OCI_MANIFEST, "digest": UNKNOWN_DIGEST, "size": 100}
    doc = index_manifest([present, missing], media_type=media_type)
    r = put_manifest(registry, repo, "t", doc, media_type)
    assert_error(r, 404, "MANIFEST_BLOB_UNKNOWN")


def test_index_child_only_in_another_repository(registry):
    repo, other = registry.repo(), registry.repo()
    child = push_image(registry, other).descriptor
    r = put_manifest(registry, repo, "t", index_manifest([child]), OCI_INDEX)
    assert_error(r, 404, "MANIFEST_BLOB_UNKNOWN")


def test_image_with_dangling_subject(registry):
    repo = registry.repo()
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"not pushed"), "size": 10}
    pushed = push_image(registry, repo, "t", subject=subject)
    r = put_manifest(registry, repo, "t2", pushed.body)
    assert r.status_code == 201
    assert r.headers["OCI-Subject"] == subject["digest"]
    assert call(registry, "GET", f"/v2/{repo}/manifests/t").content == pushed.body


def test_index_with_dangling_subject(registry):
    repo = registry.repo()
    child = push_image(registry, repo).descriptor
    subject = {"mediaType": OCI_MANIFEST, "digest": UNKNOWN_DIGEST, "size": 10}
    doc = index_manifest([child], subject=subject, artifact_type="application/vnd.example")
    r = put_manifest(registry, repo, "idx", doc, OCI_INDEX)
    assert r.status_code == 201, r.text
    assert r.headers["OCI-Subject"] == UNKNOWN_DIGEST


def test_artifact_with_dangling_subject(registry):
    repo = registry.repo()
    subject = {"mediaType": OCI_MANIFEST, "digest": UNKNOWN_DIGEST, "size": 10}
    pushed = push_artifact(registry, repo, subject, "application/vnd.example.sig")
    r = put_manifest(registry, repo, pushed.digest, pushed.body)
    assert r.status_code == 201
    assert r.headers["OCI-Subject"] == UNKNOWN_DIGEST


def test_no_subject_header_without_subject(registry):
    repo = registry.repo()
    doc, media_type = build_oci_image(registry, repo)
    r = put_manifest(registry, repo, "t", doc, media_type)
    assert r.status_code == 201
    assert "OCI-Subject" not in r.headers


def test_manifest_size_limit(registry, start_registry):
    reg = start_registry(config="[limits]\nmanifest_max_bytes = 2048\n")
    repo = reg.repo()
    doc, media_type = build_oci_image(reg, repo)
    assert put_manifest(reg, repo, "fits", padded(doc, 2048), media_type).status_code == 201
    assert_error(put_manifest(reg, repo, "big", padded(doc, 2049), media_type), 413)
    # no Content-Length: the limit holds for a chunked body too
    body = padded(doc, 4000)
    r = call(
        reg,
        "PUT",
        f"/v2/{repo}/manifests/big",
        data=(body[i : i + 500] for i in range(0, len(body), 500)),
        headers={"Content-Type": media_type},
    )
    assert_error(r, 413)
    assert_error(call(reg, "GET", f"/v2/{repo}/manifests/big"), 404, "MANIFEST_UNKNOWN")
    assert call(reg, "GET", f"/v2/{repo}/manifests/fits").content == padded(doc, 2048)
    assert "Traceback" not in reg.log()


def test_default_manifest_size_limit(registry):
    repo = registry.repo()
    doc, media_type = build_oci_image(registry, repo)
    limit = 4 * 1024 * 1024
    body = padded(doc, limit)
    r = put_manifest(registry, repo, "four-mib", body, media_type)
    assert r.status_code == 201, r.text
    r = call(registry, "GET", f"/v2/{repo}/manifests/four-mib")
    assert r.status_code == 200
    assert r.content == body
    assert_error(put_manifest(registry, repo, "big", padded(doc, limit + 1), media_type), 413)
    assert_error(call(registry, "GET", f"/v2/{repo}/manifests/big"), 404, "MANIFEST_UNKNOWN")


@pytest.fixture(scope="module")
def image(registry):
    """A repository with a config and a layer: (repo, config descriptor, layer descriptors)."""
    repo = registry.repo()
    config, layers = image_parts(registry, repo)
    return repo, config, layers


def _invalid_cases(config, layers):
    good = image_manifest(config, layers)
    no_config = {k: v for k, v in good.items() if k != "config"}
    return {
        "empty body": (b"", OCI_MANIFEST),
        "invalid json": (b'{"schemaVersion": 2,', OCI_MANIFEST),
        "json array": (b"[]", OCI_MANIFEST),
        "json string": (b'"manifest"', OCI_MANIFEST),
        "json null": (b"null", OCI_MANIFEST),
        "json number": (b"2", OCI_MANIFEST),
        "schemaVersion 1": ({**good, "schemaVersion": 1}, OCI_MANIFEST),
        "schemaVersion string": ({**good, "schemaVersion": "2"}, OCI_MANIFEST),
        "schemaVersion missing": ({k: v for k, v in good.items() if k != "schemaVersion"}, None),
        "missing config": (no_config, OCI_MANIFEST),
        "config not object": ({**good, "config": "x"}, OCI_MANIFEST),
        "bad config digest": ({**good, "config": {**config, "digest": "sha256:abc"}}, None),
        "config digest algorithm": ({**good, "config": {**config, "digest": "md5:ab"}}, None),
        "config digest missing": (
            {**good, "config": {k: v for k, v in config.items() if k != "digest"}},
            None,
        ),
        "negative size": ({**good, "config": {**config, "size": -1}}, None),
        "float size": ({**good, "config": {**config, "size": 1.5}}, None),
        "string size": ({**good, "config": {**config, "size": "10"}}, None),
        "size mismatch": ({**good, "config": {**config, "size": config["size"] + 1}}, None),
        "config mediaType missing": (
            {**good, "config": {k: v for k, v in config.items() if k != "mediaType"}},
            None,
        ),
        "layers not array": ({**good, "layers": {"a": 1}}, OCI_MANIFEST),
        "layer not object": ({**good, "layers": [1]}, OCI_MANIFEST),
        "layer bad digest": ({**good, "layers": [{**layers[0], "digest": "x"}]}, None),
        "annotations not strings": ({**good, "annotations": {"a": 1}}, None),
        "mediaType not string": ({**good, "mediaType": 5}, None),
        "content-type mismatch": (good, OCI_INDEX),
        "content-type docker vs oci body": (good, DOCKER_MANIFEST),
        "unknown media type header": (
            {k: v for k, v in good.items() if k != "mediaType"},
            "application/vnd.example.unknown+json",
        ),
        "unknown media type body": ({**good, "mediaType": "application/vnd.foo+json"}, None),
        "index without manifests": (
            {"schemaVersion": 2, "mediaType": OCI_INDEX},
            OCI_INDEX,
        ),
        "index manifests not array": (
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "x"},
            OCI_INDEX,
        ),
        "index child bad digest": (
            index_manifest([{"mediaType": OCI_MANIFEST, "digest": "sha256:1", "size": 1}]),
            OCI_INDEX,
        ),
        "docker manifest without layers": (
            {
                k: v
                for k, v in image_manifest(config, layers, media_type=DOCKER_MANIFEST).items()
                if k != "layers"
            },
            DOCKER_MANIFEST,
        ),
        "bad subject": ({**good, "subject": {"digest": "nope"}}, None),
        "bad artifactType": ({**good, "artifactType": "not a media type"}, None),
    }


INVALID_IDS = list(_invalid_cases({"digest": "", "size": 0}, [{}]))


@pytest.mark.parametrize("case", INVALID_IDS)
def test_invalid_manifest(registry, image, case):
    repo, config, layers = image
    body, media_type = _invalid_cases(config, layers)[case]
    r = put_manifest(registry, repo, "bad", body, media_type)
    assert_error(r, 400, "MANIFEST_INVALID")
    assert_error(call(registry, "GET", f"/v2/{repo}/manifests/bad"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "tag", [".bad", "-bad", "a" * 129, "t%C3%A9", "a%20b", "a+b", "a%3Bb", "a%2Fb"]
)
def test_put_invalid_tag(registry, image, tag):
    repo, config, layers = image
    r = put_manifest(registry, repo, tag, image_manifest(config, layers))
    assert 400 <= r.status_code < 500
    assert_error(r, r.status_code)
    if "%2F" not in tag:
        assert_error(r, 400, "MANIFEST_INVALID")


def test_put_longest_valid_tag(registry, image):
    repo, config, layers = image
    tag = "A" + "b_.-" * 31 + "xyz"
    assert len(tag) == 128
    assert put_manifest(registry, repo, tag, image_manifest(config, layers)).status_code == 201
    assert call(registry, "GET", f"/v2/{repo}/manifests/{tag}").status_code == 200


def test_put_invalid_name(registry, image):
    _, config, layers = image
    r = put_manifest(registry, "Upper/case", "t", image_manifest(config, layers))
    assert_error(r, 400, "NAME_INVALID")


def test_get_unknown(registry, image):
    repo, _, _ = image
    for ref in ("nope", UNKNOWN_DIGEST):
        assert_error(call(registry, "GET", f"/v2/{repo}/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")
        r = call(registry, "HEAD", f"/v2/{repo}/manifests/{ref}")
        assert r.status_code == 404
        assert r.content == b""


def test_get_in_unknown_repository(registry):
    r = call(registry, "GET", f"/v2/{registry.repo()}/manifests/latest")
    doc = assert_error(r, 404)
    assert doc["errors"][0]["code"] in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


@pytest.mark.parametrize("tag", [".bad", "-bad", "a" * 129, "%C3%A9"])
def test_get_invalid_tag(registry, image, tag):
    repo, _, _ = image
    assert_error(call(registry, "GET", f"/v2/{repo}/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "digest", ["sha256:totallywrong", "sha256:" + "a" * 63, "foo:bar", "sha256:", ":abc"]
)
def test_get_invalid_digest(registry, image, digest):
    repo, _, _ = image
    assert_error(call(registry, "GET", f"/v2/{repo}/manifests/{digest}"), 400, "DIGEST_INVALID")
    assert_error(call(registry, "DELETE", f"/v2/{repo}/manifests/{digest}"), 400, "DIGEST_INVALID")


def test_manifest_not_visible_in_other_repository(registry):
    pushed = push_image(registry, registry.repo(), "t")
    other = registry.repo()
    push_image(registry, other, "t")
    r = call(registry, "GET", f"/v2/{other}/manifests/{pushed.digest}")
    assert_error(r, 404, "MANIFEST_UNKNOWN")


def test_retag_moves_tag(registry):
    repo = registry.repo()
    first = push_image(registry, repo, "latest")
    second = push_image(registry, repo, "latest")
    r = call(registry, "GET", f"/v2/{repo}/manifests/latest")
    assert r.headers["Docker-Content-Digest"] == second.digest
    assert r.content == second.body
    assert call(registry, "GET", f"/v2/{repo}/manifests/{first.digest}").content == first.body


def tags(reg, repo):
    r = call(reg, "GET", f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    return r.json()["tags"]


def test_delete_by_digest(registry):
    repo = registry.repo()
    pushed = push_image(registry, repo, "a")
    push_manifest(registry, repo, pushed.body, "b")
    other = push_image(registry, repo, "c")
    assert tags(registry, repo) == ["a", "b", "c"]
    r = call(registry, "DELETE", f"/v2/{repo}/manifests/{pushed.digest}")
    assert r.status_code == 202
    for ref in (pushed.digest, "a", "b"):
        assert_error(call(registry, "GET", f"/v2/{repo}/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")
        assert call(registry, "HEAD", f"/v2/{repo}/manifests/{ref}").status_code == 404
    assert tags(registry, repo) == ["c"]
    assert call(registry, "GET", f"/v2/{repo}/manifests/c").content == other.body
    r = call(registry, "DELETE", f"/v2/{repo}/manifests/{pushed.digest}")
    assert_error(r, 404, "MANIFEST_UNKNOWN")


def test_delete_by_tag(registry):
    repo = registry.repo()
    pushed = push_image(registry, repo, "a")
    push_manifest(registry, repo, pushed.body, "b")
    r = call(registry, "DELETE", f"/v2/{repo}/manifests/a")
    assert r.status_code == 202
    assert_error(call(registry, "GET", f"/v2/{repo}/manifests/a"), 404, "MANIFEST_UNKNOWN")
    assert tags(registry, repo) == ["b"]
    for ref in ("b", pushed.digest):
        r = call(registry, "GET", f"/v2/{repo}/manifests/{ref}")
        assert r.status_code == 200
        assert r.content == pushed.body
    assert_error(call(registry, "DELETE", f"/v2/{repo}/manifests/a"), 404, "MANIFEST_UNKNOWN")


def test_delete_unknown(registry, image):
    repo, _, _ = image
    for ref in ("nope", UNKNOWN_DIGEST, ".bad"):
        r = call(registry, "DELETE", f"/v2/{repo}/manifests/{ref}")
        assert_error(r, 404, "MANIFEST_UNKNOWN")
    r = call(registry, "DELETE", f"/v2/{registry.repo()}/manifests/{UNKNOWN_DIGEST}")
    assert r.status_code == 404
    assert_error(r, 404)


def test_repush_after_delete(registry):
    repo = registry.repo()
    pushed = push_image(registry, repo, "t")
    assert call(registry, "DELETE", f"/v2/{repo}/manifests/{pushed.digest}").status_code == 202
    push_manifest(registry, repo, pushed.body, "t")
    assert call(registry, "GET", f"/v2/{repo}/manifests/t").content == pushed.body


def test_sha512_blobs_in_manifest(registry):
    repo = registry.repo()
    config = b'{"architecture": "arm64", "os": "linux"}'
    layer = random_bytes(300)
    push_blob(registry, repo, config, algorithm="sha512")
    push_blob(registry, repo, layer, algorithm="sha512")
    doc = image_manifest(
        {
            **descriptor("application/vnd.oci.image.config.v1+json", config),
            "digest": digest_of(config, "sha512"),
        },
        [{**descriptor(OCI_LAYER, layer), "digest": digest_of(layer, "sha512")}],
    )
    pushed = push_manifest(registry, repo, doc, "t")
    assert call(registry, "GET", f"/v2/{repo}/manifests/t").content == pushed.body


def test_conditional_get(registry):
    repo = registry.repo()
    pushed = push_image(registry, repo, "t")
    r = call(registry, "GET", f"/v2/{repo}/manifests/t")
    etag = r.headers.get("ETag")
    if etag:
        r = call(registry, "GET", f"/v2/{repo}/manifests/t", headers={"If-None-Match": etag})
        assert r.status_code == 304
        assert r.content == b""
    r = call(registry, "GET", f"/v2/{repo}/manifests/t", headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    assert r.content == pushed.body


def test_large_manifests_are_validated_like_small_ones(registry, image):
    """Past 64 KiB a manifest is parsed on a worker thread: the same errors must come
    back, as spec JSON."""
    repo, config, layers = image
    too_many = [layers[0]] * 10_001
    body = json.dumps(image_manifest(config, too_many)).encode()
    assert len(body) > 64 << 10
    r = put_manifest(registry, repo, "too-many", body, OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")
    broken = body[:-1]
    assert_error(put_manifest(registry, repo, "broken", broken, OCI_MANIFEST), 400,
                 "MANIFEST_INVALID")
    fine = json.dumps(image_manifest(config, [layers[0]] * 2_000)).encode()
    assert len(fine) > 64 << 10
    assert put_manifest(registry, repo, "many", fine, OCI_MANIFEST).status_code == 201
