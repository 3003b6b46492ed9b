"""The SBOM (SPDX 2.3) and the scan report as OCI 1.1 referrers of a scanned image,
written by the worker of an in-process registry: listed by artifactType, the SBOM
valid by spdx-tools and naming every package found with its package URL, replaced
by a re-scan, and never scanned themselves."""

from __future__ import annotations

import json

import pytest
import requests
from harness import wait_for
from pushing import OCI_LAYER, push_image
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from registry.core.grammar import Digest
from registry.scan.publish import REPORT_TYPE
from tests.scan import layers as L
from tests.scan.apps import filesystem_app

SPDX = "application/spdx+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    app, _ = filesystem_app(tmp_path_factory.mktemp("scan-referrers"),
                            scan={"referrers": True})
    yield app
    app.stop()


def referrers(reg, repo: str, digest: str, artifact_type: str) -> list[dict]:
    r = requests.get(f"{reg.url}/v2/{repo}/referrers/{digest}",
                     params={"artifactType": artifact_type}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["manifests"]


def only_one(reg, repo: str, digest: str, artifact_type: str, not_digest: str = "") -> dict:
    """The one referrer of `artifact_type`, once there is exactly one (not `not_digest`)."""
    found = wait_for(lambda: referrers(reg, repo, digest, artifact_type),
                     lambda got: len(got) == 1 and got[0]["digest"] != not_digest)
    return found[0]


def layer_of(reg, repo: str, referrer: str) -> tuple[dict, bytes]:
    r = requests.get(f"{reg.url}/v2/{repo}/manifests/{referrer}", timeout=10,
                     headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, r.text
    manifest = r.json()
    blob = requests.get(f"{reg.url}/v2/{repo}/blobs/{manifest['layers'][0]['digest']}",
                        timeout=10)
    assert blob.status_code == 200
    return manifest, blob.content


def test_sbom_and_report_referrers_replaced_by_a_rescan(reg, tmp_path):
    repo = "scan/sbom"
    layer = L.compress(L.tar(("etc/os-release", L.DEBIAN_OS_RELEASE),
                             ("var/lib/dpkg/status", L.DPKG_STATUS),
                             ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                              L.PKG_INFO)), "gzip")
    image = push_image(reg, repo, "1", [layer], layer_type=OCI_LAYER)
    sbom_ref = only_one(reg, repo, image.digest, SPDX)
    assert sbom_ref["artifactType"] == SPDX and sbom_ref["mediaType"] == OCI_MANIFEST
    result = requests.get(f"{reg.url}/api/v1/scan/{repo}@{image.digest}", timeout=10).json()
    purls = {p["purl"] for p in result["packages"]}
    assert {p["name"] for p in result["packages"]} == {"libc6", "curl", "six"}

    manifest, data = layer_of(reg, repo, sbom_ref["digest"])
    assert manifest["subject"]["digest"] == image.digest
    assert manifest["layers"][0]["mediaType"] == SPDX
    (tmp_path / "sbom.spdx.json").write_bytes(data)
    document = parse_file(str(tmp_path / "sbom.spdx.json"))  # spdx-tools reads it back
    assert validate_full_spdx_document(document, "SPDX-2.3") == []
    raw = json.loads(data)
    assert raw["spdxVersion"] == "SPDX-2.3" and raw["dataLicense"] == "CC0-1.0"
    assert raw["creationInfo"]["creators"][0].startswith("Tool: registry-")
    assert image.digest.split(":")[1] in raw["documentNamespace"]
    listed = {ref.locator: p.name for p in document.packages for ref in p.external_references
              if ref.reference_type == "purl"}
    assert purls <= set(listed)  # every package found, with its package URL
    assert {listed[p["purl"]] for p in result["packages"]} == {"libc6", "curl", "six"}
    image_id = next(p.spdx_id for p in document.packages if p.name == repo)
    contained = {r.related_spdx_element_id for r in document.relationships
                 if r.spdx_element_id == image_id and r.relationship_type.name == "CONTAINS"}
    assert len(contained) == 3

    report_ref = only_one(reg, repo, image.digest, REPORT_TYPE)
    _, report = layer_of(reg, repo, report_ref["digest"])
    assert json.loads(report)["packages"] == result["packages"]

    # No loop: the referrers are not scanned, and have no referrers of their own.
    feed = reg.dispatcher.ctx.scans
    wait_for(lambda: feed.queued, lambda n: n == 0)
    for ref in (sbom_ref, report_ref):
        r = requests.get(f"{reg.url}/api/v1/scan/{repo}@{ref['digest']}", timeout=10)
        assert r.status_code == 404 and r.json()["status"] == "pending"
        assert requests.get(f"{reg.url}/v2/{repo}/referrers/{ref['digest']}",
                            timeout=10).json()["manifests"] == []

    # A re-scan writes new ones and deletes the old: one of each, the newest.
    feed.rescan(repo, Digest.parse(image.digest))
    newer = only_one(reg, repo, image.digest, SPDX, not_digest=sbom_ref["digest"])
    only_one(reg, repo, image.digest, REPORT_TYPE, not_digest=report_ref["digest"])
    assert requests.get(f"{reg.url}/v2/{repo}/manifests/{sbom_ref['digest']}", timeout=10,
                        headers={"Accept": OCI_MANIFEST}).status_code == 404
    _, again = layer_of(reg, repo, newer["digest"])
    assert json.loads(again)["documentNamespace"] != raw["documentNamespace"]
