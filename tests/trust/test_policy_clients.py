"""podman and skopeo against `[trust] policies`: refused with the reason while the
image is unsigned, served once a signature by the required key is there."""

from __future__ import annotations

import pytest
from clients.conftest import tools_for
from clients.oci_layout import build_image
from policyutil import SITE, push_doc, start
from signers import cosign_sign


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
