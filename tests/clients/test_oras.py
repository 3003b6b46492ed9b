"""oras-py (the `oras` PyPI package) pushing and pulling OCI artifacts, and the referrers API.

oras-py 0.2's high-level `push()` has no artifactType, so artifacts with one are
built here and sent through the provider's own `upload_blob` / `upload_manifest`
(POST + monolithic PUT uploads, HEAD for existing blobs, PUT manifest as
application/vnd.oci.image.manifest.v1+json).

test_referrers asserts OCI Distribution Spec v1.1 referrers behaviour, which
docker-registry 2.8 (the reference used before our server existed) lacks.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import oras.client
import oras.defaults
import oras.oci
import oras.provider
import pytest
from oci_layout import MT_INDEX, MT_MANIFEST, media_type_of, sha256

MT_EMPTY = "application/vnd.oci.empty.v1+json"
ARTIFACT_TYPE = "application/vnd.example.registry-test.v1"
SIGNATURE_TYPE = "application/vnd.example.signature.v1+json"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
FILE_TYPE = "application/vnd.example.file.v1"
TITLE = oras.defaults.annotation_title


@pytest.fixture
def client(registry) -> oras.provider.Registry:
    return oras.client.OrasClient(hostname=registry.host, insecure=True)


def upload_file(client, container, path: Path, media_type: str = FILE_TYPE) -> dict:
    layer = oras.oci.NewLayer(str(path), media_type=media_type)
    layer["annotations"] = {TITLE: path.name}
    response = client.upload_blob(str(path), container, layer)
    client._check_200_response(response)
    return layer


def push_artifact(
    client,
    workdir: Path,
    target: str,
    files: dict[str, bytes],
    *,
    artifact_type: str | None = None,
    subject: dict | None = None,
    annotations: dict[str, str] | None = None,
    config: tuple[str, bytes] = (MT_EMPTY, b"{}"),
    layer_type: str = FILE_TYPE,
) -> tuple[str, bytes, object]:
    """Upload blobs and an image manifest through oras; returns (digest, bytes, response)."""
    container = client.get_container(target)
    workdir.mkdir(parents=True, exist_ok=True)
    layers = []
    for name, data in files.items():
        path = workdir / name
        path.write_bytes(data)
        layers.append(upload_file(client, container, path, layer_type))

    config_type, config_data = config
    config_path = workdir / f"config-{sha256(config_data)[7:19]}"
    config_path.write_bytes(config_data)
    config_desc = oras.oci.NewLayer(str(config_path), media_type=config_type)
    client._check_200_response(client.upload_blob(str(config_path), container, config_desc))

    manifest: dict = {"schemaVersion": 2, "mediaType": MT_MANIFEST}
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = config_desc
    manifest["layers"] = layers
    if subject:
        manifest["subject"] = subject
    if annotations:
        manifest["annotations"] = annotations
    # upload_manifest sends json=manifest, i.e. exactly these bytes.
    body = json.dumps(manifest, allow_nan=False).encode()
    digest = sha256(body)
    if container.digest is not None:
        container.digest = digest  # push by digest: PUT /v2/<name>/manifests/<digest>
    response = client.upload_manifest(manifest, container)
    assert response.status_code == 201, (response.status_code, response.text)
    assert response.request.body == body
    assert response.headers.get("Docker-Content-Digest") == digest
    return digest, body, response


def descriptor_of(digest: str, body: bytes) -> dict:
    return {"mediaType": MT_MANIFEST, "digest": digest, "size": len(body)}


def test_push_pull_high_level(client, registry, tmp_path):
    """oras' own push()/pull(): files with titles, default config, then get_tags."""
    repo = registry.repo("oras")
    target = f"{registry.host}/{repo}:v1"
    src = tmp_path / "src"
    src.mkdir()
    files = {"a.txt": os.urandom(100).hex().encode(), "b.bin": os.urandom(3000)}
    for name, data in files.items():
        (src / name).write_bytes(data)

    resp = client.push(
        target=target,
        files=[f"{src / name}:{FILE_TYPE}" for name in files],
        disable_path_validation=True,
        manifest_annotations={"org.example.note": "high-level"},
        quiet=True,
    )
    assert resp.status_code == 201

    manifest = client.get_manifest(target)
    assert manifest["annotations"] == {"org.example.note": "high-level"}
    assert [layer["annotations"][TITLE] for layer in manifest["layers"]] == list(files)

    out = tmp_path / "out"
    pulled = client.pull(target=target, outdir=str(out))
    assert sorted(Path(p).name for p in pulled) == sorted(files)
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    assert client.get_tags(f"{registry.host}/{repo}") == ["v1"]


def test_push_pull_artifact_type(client, registry, tmp_path):
    repo = registry.repo("oras")
    target = f"{registry.host}/{repo}:artifact"
    files = {"payload.json": json.dumps({"n": os.urandom(8).hex()}).encode()}
    digest, body, _ = push_artifact(
        client, tmp_path / "push", target, files, artifact_type=ARTIFACT_TYPE
    )

    # The manifest comes back byte for byte, artifactType and the empty config intact.
    r = client.do_request(
        f"{registry.url}/v2/{repo}/manifests/artifact", headers={"Accept": MT_MANIFEST}
    )
    assert r.status_code == 200
    assert r.content == body
    assert media_type_of(r) == MT_MANIFEST
    manifest = client.get_manifest(f"{registry.host}/{repo}@{digest}")
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == MT_EMPTY
    assert manifest["config"]["digest"] == oras.defaults.blank_config_hash

    out = tmp_path / "out"
    pulled = client.pull(target=target, outdir=str(out))
    assert [Path(p).name for p in pulled] == ["payload.json"]
    assert (out / "payload.json").read_bytes() == files["payload.json"]
    # And the config blob itself is the 2-byte empty JSON object.
    blob = client.get_blob(f"{registry.host}/{repo}", oras.defaults.blank_config_hash)
    assert blob.status_code == 200
    assert blob.content == b"{}"


def test_referrers(client, registry, tmp_path):
    """OCI v1.1 referrers API (NOT available in docker-registry 2.8: validate on our server)."""
    repo = registry.repo("oras")
    host = registry.host
    subject_digest, subject_body, _ = push_artifact(
        client,
        tmp_path / "subject",
        f"{host}/{repo}:subject",
        {"payload.txt": os.urandom(64)},
        artifact_type=ARTIFACT_TYPE,
    )
    subject = descriptor_of(subject_digest, subject_body)

    # Referrer 1: explicit artifactType, pushed by digest (untagged), with annotations.
    sig_annotations = {"org.example.kind": "signature", "org.example.n": os.urandom(4).hex()}
    sig_digest, sig_body, sig_resp = push_artifact(
        client,
        tmp_path / "sig",
        f"{host}/{repo}@sha256:{'0' * 64}",  # digest is replaced by the real one
        {"sig.json": json.dumps({"sig": os.urandom(16).hex()}).encode()},
        artifact_type=SIGNATURE_TYPE,
        subject=subject,
        annotations=sig_annotations,
    )
    # Referrer 2: no artifactType; its config media type must stand in for it.
    sbom_digest, sbom_body, sbom_resp = push_artifact(
        client,
        tmp_path / "sbom",
        f"{host}/{repo}:sbom",
        {"sbom.json": b'{"packages": []}'},
        subject=subject,
        config=(SBOM_TYPE, json.dumps({"tool": os.urandom(4).hex()}).encode()),
    )
    # Referrer 3: its subject was never pushed; the registry must still accept and index it.
    missing = f"sha256:{os.urandom(32).hex()}"
    orphan_digest, _, orphan_resp = push_artifact(
        client,
        tmp_path / "orphan",
        f"{host}/{repo}:orphan",
        {"orphan.txt": os.urandom(32)},
        artifact_type=SIGNATURE_TYPE,
        subject={"mediaType": MT_MANIFEST, "digest": missing, "size": 123},
    )

    def referrers(digest: str, artifact_type: str | None = None):
        url = f"{registry.url}/v2/{repo}/referrers/{digest}"
        if artifact_type is not None:
            url += "?artifactType=" + urllib.parse.quote(artifact_type, safe="")
        r = client.do_request(url, headers={"Accept": MT_INDEX})
        assert r.status_code == 200, (url, r.status_code, r.text)
        assert media_type_of(r) == MT_INDEX
        index = r.json()
        assert index["schemaVersion"] == 2
        assert index["mediaType"] == MT_INDEX
        return r, {d["digest"]: d for d in index["manifests"]}

    # --- everything below needs the referrers API (docker-registry 2.8 answers 404) ---
    _, listed = referrers(subject_digest)
    assert set(listed) == {sig_digest, sbom_digest}
    fields = ("mediaType", "digest", "size", "artifactType", "annotations")
    assert {k: listed[sig_digest].get(k) for k in fields} == {
        "mediaType": MT_MANIFEST,
        "digest": sig_digest,
        "size": len(sig_body),
        "artifactType": SIGNATURE_TYPE,
        "annotations": sig_annotations,
    }
    assert listed[sbom_digest]["artifactType"] == SBOM_TYPE
    assert listed[sbom_digest]["size"] == len(sbom_body)
    assert listed[sbom_digest]["mediaType"] == MT_MANIFEST
    assert not listed[sbom_digest].get("annotations")

    # A registry with the referrers API says which subject a pushed manifest refers to.
    for resp in (sig_resp, sbom_resp):
        assert resp.headers.get("OCI-Subject") == subject_digest
    assert orphan_resp.headers.get("OCI-Subject") == missing

    # Filtering by artifactType, announced with OCI-Filters-Applied.
    r, filtered = referrers(subject_digest, SIGNATURE_TYPE)
    assert set(filtered) == {sig_digest}
    assert r.headers.get("OCI-Filters-Applied") == "artifactType"
    r, filtered = referrers(subject_digest, SBOM_TYPE)
    assert set(filtered) == {sbom_digest}
    _, filtered = referrers(subject_digest, "application/vnd.example.nothing")
    assert filtered == {}

    # A subject that does not exist (yet) still lists what refers to it ...
    _, listed = referrers(missing)
    assert set(listed) == {orphan_digest}
    # ... and a manifest nobody refers to gets an empty index, not a 404.
    _, listed = referrers(sig_digest)
    assert listed == {}

    # Deleting a referrer takes it out of the list.
    r = client.do_request(f"{registry.url}/v2/{repo}/manifests/{sig_digest}", "DELETE")
    assert r.status_code == 202
    _, listed = referrers(subject_digest)
    assert set(listed) == {sbom_digest}
