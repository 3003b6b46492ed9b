"""buildah: build an image from scratch, commit it as OCI and as Docker, push, verify."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from oci_layout import media_type_of, sha256

FORMATS = {
    "oci": (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    "docker": (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_build_commit_push(tools, registry, tmp_path, fmt):
    manifest_type, config_type, layer_type = FORMATS[fmt]
    repo = registry.repo("buildah")
    label = f"label-{os.urandom(4).hex()}"
    payload = tmp_path / "hello.txt"
    payload.write_bytes(b"hello from buildah " + os.urandom(16).hex().encode())

    ctr = tools.buildah("from", "scratch").stdout.strip()
    tools.buildah("copy", ctr, payload, "/hello.txt")
    tools.buildah(
        "config",
        "--env=GREETING=hello",
        f"--label=org.example.test={label}",
        "--os=linux",
        "--arch=amd64",
        "--cmd=/hello.txt",
        ctr,
    )
    local = f"localhost/buildah-test:{fmt}"
    tools.buildah("commit", "--format", fmt, ctr, local)

    digestfile = tmp_path / "digest"
    target = tools.docker_ref(repo, "built")
    tools.buildah("push", "--tls-verify=false", f"--digestfile={digestfile}", local, target)
    pushed_digest = digestfile.read_text().strip()

    # What the registry stores and serves is what buildah pushed, in the right format.
    raw = tools.inspect_raw(repo, "built")
    assert sha256(raw) == pushed_digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == manifest_type
    assert manifest["config"]["mediaType"] == config_type
    assert [layer["mediaType"] for layer in manifest["layers"]] == [layer_type]
    resp = tools.get_manifest(repo, "built")
    assert resp.status_code == 200
    assert media_type_of(resp) == manifest_type
    assert resp.headers["Docker-Content-Digest"] == pushed_digest
    assert resp.content == raw

    info = tools.inspect(repo, "built")
    assert info["Digest"] == pushed_digest
    assert info["Labels"]["org.example.test"] == label
    assert "GREETING=hello" in info["Env"]
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Layers"] == [manifest["layers"][0]["digest"]]

    # The file made it into the layer: pull it back into a fresh container and read it.
    tools.buildah("rm", "--all")
    tools.buildah("rmi", "--all", "--force")
    ctr2 = tools.buildah("from", "--tls-verify=false", tools.image_name(repo, "built"))
    mount = tools.buildah("mount", ctr2.stdout.strip()).stdout.strip()
    assert Path(mount, "hello.txt").read_bytes() == payload.read_bytes()
