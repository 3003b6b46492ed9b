"""podman and skopeo against `[trust] policies`: refused with the reason while the
image is unsigned, served once a signature by the required key is there."""

from __future__ import annotations

import json
import signal

import pytest
import requests
from clients.conftest import tools_for
from clients.oci_layout import build_image
from harness import launch, poll
from policyutil import SITE, push_doc, start
from pushing import push_image
from signers import cosign_sign

from registry.auth.passwords import hash_password


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    app = start(tmp_path_factory.mktemp("policy-clients"), ["prod/* require=site"])
    yield app
    app.stop()


def test_podman_and_skopeo_refused_then_allowed(reg, tmp_path):
    tools = tools_for(tmp_path / "ctools", reg)
    image = build_image(tmp_path / "src", "v1")
    repo, ref = "prod/app", tools.docker_ref("prod/app", "v1")
    tools.skopeo("copy", "--dest-tls-verify=false", image.ref, ref)

    copied = tools.skopeo("copy", "--src-tls-verify=false", ref,
                          f"oci:{tmp_path / 'out'}:back", check=False)
    assert copied.returncode != 0
    assert "denied" in copied.stderr and "unsigned" in copied.stderr, copied.stderr
    pulled = tools.podman("pull", "--tls-verify=false", tools.image_name(repo, "v1"),
                          check=False)
    assert pulled.returncode != 0
    assert "denied" in pulled.stderr and "unsigned" in pulled.stderr, pulled.stderr

    push_doc(reg, repo, cosign_sign(SITE, f"{reg.host}/{repo}", image.digest))
    tools.skopeo("copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'out'}:back")
    tools.podman("pull", "--tls-verify=false", tools.image_name(repo, "v1"))
    out = tools.podman("image", "inspect", "--format", "{{.Digest}}",
                       tools.image_name(repo, "v1"))
    assert out.stdout.strip() == image.digest


def test_pushers_read_as_is_and_policy_changes_are_audited(tmp_path):
    """With auth on, a caller who may push the repository reads what is there (the
    pipeline reads back what it pushed, to sign it); pullers are judged. The rules
    applied at start and on SIGHUP go to the audit log, old and new."""
    users = [f"writer:{hash_password('writer-pw')}:writers"]
    rules = ["prod/* anonymous pull", "prod/* group:writers pull,push"]
    policies = ["prod/* require=site"]

    def config(policies: list[str]) -> str:
        return (f'[auth]\nmode = "token"\nusers = {json.dumps(users)}\n'
                f'rules = {json.dumps(rules)}\n[trust]\npolicies = {json.dumps(policies)}\n')

    reg = launch(tmp_path, config=config(policies))
    try:
        writer = ("writer", "writer-pw")
        image = push_image(reg, "prod/app", "v1", auth=writer)
        url = f"{reg.url}/v2/prod/app/manifests/{image.digest}"
        assert requests.get(url, timeout=10).status_code == 403
        assert requests.get(url, auth=writer, timeout=10).status_code == 200

        def audited() -> list[dict]:
            lines = (reg.data_dir / "audit.log").read_text().splitlines()
            return [e for e in map(json.loads, lines) if e["event"] == "policy_changed"]

        (start,) = audited()
        assert (start["how"], start["old"], start["new"]) == ("start", [], policies)
        assert start["by"] and start["pid"]
        (tmp_path / "registry.toml").write_text(config(["prod/* sign=site"]))
        reg.process.send_signal(signal.SIGHUP)
        poll(lambda: len(audited()) == 2, what="the reload audited")
        reload = audited()[1]
        assert (reload["how"], reload["old"], reload["new"]) == (
            "reload", policies, ["prod/* sign=site"])
        assert requests.get(url, timeout=10).status_code == 200  # pulls not judged now
        (tmp_path / "registry.toml").write_text(config(["prod/* require="]))
        reg.process.send_signal(signal.SIGHUP)
        poll(lambda: "keeping the old ones" in reg.log(), what="the bad rules refused")
        assert requests.get(url, timeout=10).status_code == 200 and len(audited()) == 2
    finally:
        reg.stop()
