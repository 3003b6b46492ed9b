"""oras-py attaching image-compatibility artifacts as NFD's docs do with `oras attach`
(artifactType application/vnd.nfd.image-compatibility.v1alpha1, one YAML spec layer,
the image as subject): a valid spec is stored and listed as a referrer; a hostile one
is refused with 400 MANIFEST_INVALID and the referrers stay as they were."""

from __future__ import annotations

import json

import oras.oci
from oci_layout import MT_MANIFEST, sha256
from test_oras import (
    MT_EMPTY,
    client,  # noqa: F401  (a fixture)
    descriptor_of,
    push_artifact,
    upload_file,
)

NFD_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
NFD_SPEC = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
SPEC = b"""version: v1alpha1
compatibilities:
- description: "My image requirements"
  rules:
  - name: "kernel and cpu"
    matchFeatures:
    - feature: kernel.loadedmodule
      matchExpressions:
        vfio-pci: {op: Exists}
    - feature: cpu.model
      matchExpressions:
        vendor_id: {op: In, value: ["Intel", "AMD"]}
"""
BOMB = b"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n"


def referrers(client, registry, repo: str, digest: str) -> list[str]:  # noqa: F811
    r = client.do_request(f"{registry.url}/v2/{repo}/referrers/{digest}")
    assert r.status_code == 200, r.text
    return [m["digest"] for m in r.json()["manifests"]]


def test_oras_attaches_an_nfd_spec_and_a_hostile_one_is_refused(client, registry,  # noqa: F811
                                                               tmp_path) -> None:
    repo = registry.repo("compat")
    target = f"{registry.host}/{repo}:v1"
    image_digest, image_body, _ = push_artifact(client, tmp_path / "img", target,
                                                {"app.bin": b"\x7fELF" + bytes(64)})
    subject = descriptor_of(image_digest, image_body)
    by_digest = f"{registry.host}/{repo}@{image_digest}"

    good, _, _ = push_artifact(client, tmp_path / "good", by_digest, {"spec.yaml": SPEC},
                               artifact_type=NFD_TYPE, subject=subject, layer_type=NFD_SPEC)
    assert referrers(client, registry, repo, image_digest) == [good]

    # The hostile spec: its blobs upload, the manifest naming them is refused.
    container = client.get_container(by_digest)
    (tmp_path / "spec.yaml").write_bytes(BOMB)
    (tmp_path / "config").write_bytes(b"{}")
    layer = upload_file(client, container, tmp_path / "spec.yaml", NFD_SPEC)
    config = oras.oci.NewLayer(str(tmp_path / "config"), media_type=MT_EMPTY)
    client._check_200_response(client.upload_blob(str(tmp_path / "config"), container, config))
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "artifactType": NFD_TYPE,
                "config": config, "layers": [layer], "subject": subject}
    container.digest = sha256(json.dumps(manifest).encode())
    response = client.upload_manifest(manifest, container)
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "MANIFEST_INVALID" and "aliases" in error["message"], error
    assert referrers(client, registry, repo, image_digest) == [good]
