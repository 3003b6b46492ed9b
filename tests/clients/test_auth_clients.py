"""Real clients against a registry with token auth on: podman login, skopeo --creds,
buildah --creds, oras login, curl's Basic, each pushing and pulling what its
credentials allow and refused the rest."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import oras.client
import pytest
from oci_layout import build_image

sys.path.insert(0, str(Path(__file__).parent.parent / "auth"))
from authutil import (
    GROUPS,
    PASSWORDS,
    add_robot,
    add_user,
    audit_events,
    auth_config,
    cli,
)
from harness import launch


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    reg = launch(tmp_path_factory.mktemp("auth-clients"), config=auth_config())
    for name, password in PASSWORDS.items():
        add_user(reg, name, password, GROUPS[name])
    yield reg
    reg.stop()


@pytest.fixture
def tools(make_tools, secured):
    return make_tools(secured)


def test_podman_login_push_pull_and_refusals(tools, secured, tmp_path):
    image = build_image(tmp_path / "src", "v1")
    name = tools.image_name("team/podman", "v1")
    tools.skopeo("copy", "--dest-tls-verify=false", "--dest-creds",
                 f"writer:{PASSWORDS['writer']}", image.ref, tools.docker_ref("team/podman", "v1"))
    # Anonymous: refused, and podman says so.
    denied = tools.podman("pull", "--tls-verify=false", name, check=False)
    assert denied.returncode != 0
    assert "unauthorized" in denied.stderr.lower() or "authentication" in denied.stderr.lower()
    # The reader logs in and pulls, and may not push.
    login = tools.run("sh", "-c", f"echo {PASSWORDS['reader']} | podman login "
                      f"--tls-verify=false -u reader --password-stdin {secured.host}")
    assert "Login Succeeded" in login.stdout
    tools.podman("pull", "--tls-verify=false", name)
    pushed = tools.podman("push", "--tls-verify=false", name,
                          tools.image_name("team/podman", "mine"), check=False)
    assert pushed.returncode != 0
    assert "denied" in pushed.stderr.lower() or "unauthorized" in pushed.stderr.lower()
    # A wrong password: podman login fails.
    bad = tools.run("sh", "-c", f"echo wrong | podman login --tls-verify=false -u reader "
                    f"--password-stdin {secured.host}", check=False)
    assert bad.returncode != 0
    # The writer pushes a new tag with podman.
    tools.run("sh", "-c", f"echo {PASSWORDS['writer']} | podman login --tls-verify=false "
              f"-u writer --password-stdin {secured.host}")
    tools.podman("push", "--tls-verify=false", name, tools.image_name("team/podman", "v2"))
    assert tools.inspect("team/podman", "v2")  # (inspect goes through the registry)


def test_skopeo_and_buildah_with_a_robot_token(tools, secured, tmp_path):
    robot = add_robot(secured, "pipeline", "repository:team/ci/*:pull,push")
    creds = f"pipeline:{robot}"
    image = build_image(tmp_path / "src", "v1")
    tools.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, image.ref,
                 tools.docker_ref("team/ci/app", "v1"))
    out = tools.skopeo("inspect", "--tls-verify=false", "--creds", creds,
                       tools.docker_ref("team/ci/app", "v1"))
    assert image.digest in out.stdout
    outside = tools.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, image.ref,
                           tools.docker_ref("team/app", "v1"), check=False)
    assert outside.returncode != 0
    # buildah pulls with the robot's credentials and pushes a copy in its scope.
    tools.buildah("pull", "--tls-verify=false", "--creds", creds,
                  tools.image_name("team/ci/app", "v1"))
    tools.buildah("push", "--tls-verify=false", "--creds", creds,
                  tools.image_name("team/ci/app", "v1"),
                  tools.docker_ref("team/ci/app", "copy"))
    pushes = [e for e in audit_events(secured) if e["event"] == "push"
              and e.get("robot") == "pipeline"]
    assert any(e["resource"] == "team/ci/app" for e in pushes)
    listed = cli(secured, "tokens", "list").stdout.splitlines()
    used = [line for line in listed if line.startswith("pipeline\t")]
    assert used and "last used=-" not in used[0]


def test_oras_login_push_pull(secured, tmp_path):
    client = oras.client.OrasClient(hostname=secured.host, insecure=True)
    client.login(username="writer", password=PASSWORDS["writer"], hostname=secured.host,
                 tls_verify=False, config_path=str(tmp_path / "auth.json"))
    src = tmp_path / "a.txt"
    src.write_bytes(os.urandom(64).hex().encode())
    target = f"{secured.host}/team/oras:v1"
    resp = client.push(target=target, files=[str(src)], disable_path_validation=True,
                       quiet=True)
    assert resp.status_code == 201
    out = tmp_path / "out"
    pulled = client.pull(target=target, outdir=str(out))
    assert Path(pulled[0]).read_bytes() == src.read_bytes()
    anonymous = oras.client.OrasClient(hostname=secured.host, insecure=True)
    with pytest.raises(Exception):  # noqa: B017 - oras-py raises its own ValueError/HTTP errors
        anonymous.pull(target=target, outdir=str(tmp_path / "anon"))
