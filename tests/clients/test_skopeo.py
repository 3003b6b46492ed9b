"""skopeo (containers/image) against the registry: copy in and out, inspect, tags, delete."""

from __future__ import annotations

import json

from oci_layout import (
    MT_INDEX,
    MT_MANIFEST,
    build_image,
    build_index,
    layout_blob_digests,
    media_type_of,
    read_blob,
    read_layout,
    sha256,
)


def test_copy_roundtrip_keeps_digests(tools, registry, tmp_path):
    repo = registry.repo("skopeo")
    image = build_image(tmp_path / "src", "v1")

    tools.skopeo("copy", "--dest-tls-verify=false", image.ref, tools.docker_ref(repo, "v1"))

    # The registry serves the manifest byte for byte, under the tag and under its digest.
    assert tools.inspect_raw(repo, "v1") == image.manifest
    assert tools.inspect_raw(repo, image.digest) == image.manifest
    resp = tools.get_manifest(repo, "v1")
    assert resp.status_code == 200
    assert resp.content == image.manifest
    assert media_type_of(resp) == MT_MANIFEST
    assert resp.headers["Docker-Content-Digest"] == image.digest

    # Back out into a fresh OCI layout: same manifest digest, same set of blobs.
    out = tmp_path / "out"
    tools.skopeo("copy", "--src-tls-verify=false", tools.docker_ref(repo, "v1"), f"oci:{out}:back")
    entry, manifest = read_layout(out, "back")
    assert entry["digest"] == image.digest
    assert entry["mediaType"] == MT_MANIFEST
    assert manifest == image.manifest
    assert layout_blob_digests(out) == set(image.blobs)
    for digest, data in image.blobs.items():
        assert read_blob(out, digest) == data, digest

    # skopeo's parsed view agrees with what we built.
    info = tools.inspect(repo, "v1")
    assert info["Digest"] == image.digest
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Layers"] == image.layer_digests
    assert info["Labels"] == {"org.example.test": "oci_layout"}


def test_list_tags(tools, registry, tmp_path):
    repo = registry.repo("skopeo")
    image = build_image(tmp_path / "src", "v1")
    for tag in ("v1", "latest", "1.0.0-rc_1"):
        tools.skopeo("copy", "--dest-tls-verify=false", image.ref, tools.docker_ref(repo, tag))

    out = tools.skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/{repo}")
    listing = json.loads(out.stdout)
    assert listing["Repository"] == f"{registry.host}/{repo}"
    assert sorted(listing["Tags"]) == ["1.0.0-rc_1", "latest", "v1"]


def test_delete_by_digest(tools, registry, tmp_path):
    repo = registry.repo("skopeo")
    image = build_image(tmp_path / "src", "v1")
    keep = build_image(tmp_path / "keep", "keep")
    tools.skopeo("copy", "--dest-tls-verify=false", image.ref, tools.docker_ref(repo, "v1"))
    tools.skopeo("copy", "--dest-tls-verify=false", keep.ref, tools.docker_ref(repo, "keep"))
    assert tools.get_manifest(repo, image.digest).status_code == 200

    tools.skopeo("delete", "--tls-verify=false", tools.docker_ref(repo, image.digest))

    assert tools.get_manifest(repo, image.digest).status_code == 404
    failed = tools.skopeo(
        "inspect", "--raw", "--tls-verify=false", tools.docker_ref(repo, "v1"), check=False
    )
    assert failed.returncode != 0, "the deleted manifest is still reachable by its tag"
    # Only that manifest went: the other image in the same repository is untouched.
    assert tools.inspect_raw(repo, "keep") == keep.manifest


def test_copy_multi_arch_index_with_all(tools, registry, tmp_path):
    repo = registry.repo("skopeo")
    index = build_index(tmp_path / "src", "multi")

    tools.skopeo(
        "copy", "--all", "--dest-tls-verify=false", index.ref, tools.docker_ref(repo, "multi")
    )

    assert tools.inspect_raw(repo, "multi") == index.manifest
    resp = tools.get_manifest(repo, "multi")
    assert resp.status_code == 200
    assert media_type_of(resp) == MT_INDEX
    assert resp.headers["Docker-Content-Digest"] == index.digest
    assert sha256(resp.content) == index.digest
    # Each platform manifest is there under its own digest.
    for child in index.children.values():
        assert tools.inspect_raw(repo, child) == index.blobs[child]

    # Platform selection through the index picks the right child.
    arm = tools.inspect(repo, "multi", arch="arm64")
    assert arm["Architecture"] == "arm64"
    arm_manifest = json.loads(index.blobs[index.children["linux/arm64"]])
    assert arm["Layers"] == [layer["digest"] for layer in arm_manifest["layers"]]
    assert arm["Digest"] == index.digest  # skopeo reports the digest of what was named

    # And back out with --all: the index digest and every blob survive.
    out = tmp_path / "out"
    tools.skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        tools.docker_ref(repo, "multi"),
        f"oci:{out}:back",
    )
    entry, manifest = read_layout(out, "back")
    assert entry["digest"] == index.digest
    assert manifest == index.manifest
    assert layout_blob_digests(out) == set(index.blobs)
