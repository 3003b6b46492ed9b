"""podman (rootful, vfs storage, no systemd) pulling from and pushing to the registry."""

from __future__ import annotations

import json

from oci_layout import MT_MANIFEST, build_image, media_type_of, sha256


def inspect_image(tools, name: str) -> dict:
    out = tools.podman("image", "inspect", name)
    (info,) = json.loads(out.stdout)
    return info


def test_pull_push_pull(tools, registry, tmp_path):
    src_repo = registry.repo("podman")
    dst_repo = registry.repo("podman")
    image = build_image(tmp_path / "src", "v1")
    config_id = image.config_digest.removeprefix("sha256:")
    tools.skopeo("copy", "--dest-tls-verify=false", image.ref, tools.docker_ref(src_repo, "v1"))

    # Pull what skopeo pushed: podman records the registry's manifest digest.
    src_name = tools.image_name(src_repo, "v1")
    tools.podman("pull", "--tls-verify=false", src_name)
    info = inspect_image(tools, src_name)
    assert info["Id"] == config_id
    assert info["Digest"] == image.digest
    assert f"{registry.host}/{src_repo}@{image.digest}" in info["RepoDigests"]
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Labels"] == {"org.example.test": "oci_layout"}

    # Push it to another repository under a new tag; podman reports the digest it wrote.
    dst_name = tools.image_name(dst_repo, "pushed")
    digestfile = tmp_path / "digest"
    tools.podman("push", "--tls-verify=false", "--digestfile", digestfile, src_name, dst_name)
    pushed_digest = digestfile.read_text().strip()
    resp = tools.get_manifest(dst_repo, "pushed")
    assert resp.status_code == 200
    assert resp.headers["Docker-Content-Digest"] == pushed_digest
    assert sha256(resp.content) == pushed_digest
    manifest = json.loads(resp.content)
    assert manifest["config"]["digest"] == image.config_digest
    assert len(manifest["layers"]) == len(image.layer_digests)

    # A second tag on the same repository via `podman tag` + push.
    tools.podman("tag", src_name, tools.image_name(dst_repo, "second"))
    tools.podman("push", "--tls-verify=false", tools.image_name(dst_repo, "second"))
    tags = json.loads(
        tools.skopeo(
            "list-tags", "--tls-verify=false", f"docker://{registry.host}/{dst_repo}"
        ).stdout
    )["Tags"]
    assert sorted(tags) == ["pushed", "second"]

    # Forget everything locally, then pull the pushed copy back by tag and by digest.
    tools.podman("rmi", "--all", "--force")
    assert json.loads(tools.podman("images", "--format", "json").stdout) in ([], None)
    tools.podman("pull", "--tls-verify=false", dst_name)
    back = inspect_image(tools, dst_name)
    assert back["Id"] == config_id
    assert back["Digest"] == pushed_digest
    assert back["Architecture"] == "amd64"
    by_digest = tools.image_name(dst_repo, pushed_digest)
    tools.podman("pull", "--tls-verify=false", by_digest)
    assert inspect_image(tools, by_digest)["Id"] == config_id


def test_push_oci_and_docker_formats(tools, registry, tmp_path):
    """podman push --format picks the manifest type the registry must store and serve."""
    repo = registry.repo("podman")
    image = build_image(tmp_path / "src", "v1", layers=1)
    tools.skopeo("copy", "--dest-tls-verify=false", image.ref, tools.docker_ref(repo, "src"))
    tools.podman("pull", "--tls-verify=false", tools.image_name(repo, "src"))

    expected = {
        "oci": MT_MANIFEST,
        "v2s2": "application/vnd.docker.distribution.manifest.v2+json",
    }
    for fmt, media_type in expected.items():
        tools.podman(
            "push",
            "--tls-verify=false",
            "--format",
            fmt,
            tools.image_name(repo, "src"),
            tools.image_name(repo, fmt),
        )
        resp = tools.get_manifest(repo, fmt)
        assert resp.status_code == 200
        assert media_type_of(resp) == media_type
        assert json.loads(resp.content)["mediaType"] == media_type
        assert tools.inspect(repo, fmt)["Architecture"] == "amd64"
