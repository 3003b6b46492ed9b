"""Scan results matched against imported OSV advisories: vulnerabilities and max_severity
in `GET /api/v1/scan/<name>@<digest>`, through the worker and the API of an in-process
registry, and re-matched when `registry advisories import` changes what affects them."""

from __future__ import annotations

import json

import pytest
import requests
from blockbuster import blockbuster_ctx
from harness import wait_for
from pushing import OCI_LAYER, push_image, push_spack_oci

from loadtest.spackgen import make_spec
from registry.cli import main
from tests.scan import layers as L
from tests.scan.apps import filesystem_app
from tests.scan.osvdocs import CVSS_CRITICAL, advisory, git_advisory, write_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scan-vulns")
    reg, _ = filesystem_app(tmp)
    yield reg, tmp
    reg.stop()


def result(reg, repo: str, digest: str) -> dict:
    got = wait_for(lambda: requests.get(f"{reg.url}/api/v1/scan/{repo}@{digest}", timeout=10),
                   lambda r: r.status_code != 404 or r.json().get("status") != "pending")
    assert got.status_code == 200, got.text
    return got.json()


def severity(reg, repo: str, **filters: str) -> list[str | None]:
    """The max_severity of each search result of `repo`'s manifests (the index's)."""
    got = requests.get(f"{reg.url}/api/v1/search", params={"q": repo, "kind": "image", **filters},
                       timeout=10)
    assert got.status_code == 200, got.text
    return [r["max_severity"] for r in got.json()["results"] if r["repository"] == repo]


def imported(tmp, name: str, docs: list[dict], capsys) -> dict:
    capsys.readouterr()
    assert main(["advisories", "import", write_dir(str(tmp / name), docs), "--json",
                 "--config", str(tmp / "registry.toml")]) == 0
    return json.loads(capsys.readouterr().out)


def test_findings_and_rematch_after_import(world, capsys):
    reg, tmp = world
    glibc = advisory("DSA-5611-1", "Debian:12", "glibc", fixed="2.36-9+deb12u5",
                     aliases=["CVE-2023-6246"],
                     severity=[{"type": "CVSS_V3", "score": CVSS_CRITICAL}])
    assert imported(tmp, "first", [glibc], capsys)["imported"] == 1
    image = push_image(reg, "vulns/debian", "12", [L.compress(L.tar(
        ("etc/os-release", L.DEBIAN_OS_RELEASE), ("var/lib/dpkg/status", L.DPKG_STATUS),
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", L.PKG_INFO)),
        "gzip")], layer_type=OCI_LAYER)
    spec = make_spec("zlib", "1.3.1")
    push_spack_oci(reg, "vulns/spack", spec)
    spack_digest = requests.head(
        f"{reg.url}/v2/vulns/spack/manifests/{spec.tag}", timeout=10,
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    ).headers["Docker-Content-Digest"]
    with blockbuster_ctx(["registry"]):  # matching runs off the loop
        doc = result(reg, "vulns/debian", image.digest)
        assert result(reg, "vulns/spack", spack_digest)["vulnerabilities"] == []
    # libc6 is matched by its source package, glibc, in Debian 12's records.
    (v,) = doc["vulnerabilities"]
    assert (v["id"], v["package"], v["version"], v["fixed"], v["aliases"]) == (
        "DSA-5611-1", "libc6", "2.36-9+deb12u4", "2.36-9+deb12u5", ["CVE-2023-6246"])
    assert v["severity"]["level"] == "critical" and v["severity"]["score"] == 9.8
    assert v["purl"].startswith("pkg:deb/debian/libc6@")
    assert doc["max_severity"] == "critical"
    # The worker's result reaches the index through its queued hooks: search shows it.
    assert wait_for(lambda: severity(reg, "vulns/debian"), lambda got: got == ["critical"]) \
        == ["critical"]
    assert severity(reg, "vulns/debian", severity="high") == ["critical"]
    assert wait_for(lambda: severity(reg, "vulns/spack"), lambda got: got == ["none"]) == [
        "none"]
    assert severity(reg, "vulns/spack", severity="low") == []

    # An import naming six and zlib's repository re-matches the stored results at once
    # (the CLI writes them through the store), and the withdrawn DSA drops out.
    report = imported(tmp, "second", [
        advisory("PYSEC-2099-6", "PyPI", "Six", fixed="1.17.0",
                 database_specific={"severity": "LOW"}),
        git_advisory("CVE-2099-0001", "https://github.com/madler/zlib.git",
                     ["v1.3", "v1.3.1"],
                     severity=[{"type": "CVSS_V3",
                                "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:N"}]),
        glibc | {"modified": "2024-06-01T00:00:00Z", "withdrawn": "2024-06-01T00:00:00Z"},
    ], capsys)
    assert (report["imported"], report["updated"], report["rematched"]) == (2, 1, 2)
    # The import wrote the re-matched summaries to the index itself: no read needed.
    assert severity(reg, "vulns/debian") == ["low"]
    assert severity(reg, "vulns/spack") == ["medium"]
    doc = result(reg, "vulns/debian", image.digest)
    assert [(v["id"], v["package"], v["fixed"], v["severity"]["level"])
            for v in doc["vulnerabilities"]] == [("PYSEC-2099-6", "six", "1.17.0", "low")]
    assert doc["max_severity"] == "low"
    spack = result(reg, "vulns/spack", spack_digest)
    assert [(v["id"], v["package"], v["ecosystem"]) for v in spack["vulnerabilities"]] == \
        [("CVE-2099-0001", "zlib", "https://github.com/madler/zlib.git")]
    assert spack["max_severity"] == "medium"
    # `registry scan REF` lists them after the inventory.
    capsys.readouterr()
    assert main(["scan", "vulns/debian:12", "--config", str(tmp / "registry.toml")]) == 0
    out = capsys.readouterr().out
    assert "1 vulnerabilities (max low)" in out
    assert "vulnerability\tPYSEC-2099-6\tlow\tsix\t1.16.0\t1.17.0\t" in out

    # An import touching none of their packages re-matches none at once; a read finds
    # the result older than the database and matches it again.
    before = spack["advisories"]["generation"]
    report = imported(tmp, "third", [advisory("GHSA-xxxx", "npm", "left-pad")], capsys)
    assert report["rematched"] == 0
    assert result(reg, "vulns/spack", spack_digest)["advisories"]["generation"] == before + 1
    assert "Traceback" not in reg.log()
