"""Images pushed over HTTP to an in-process registry, scanned by its worker, and read
back through `GET /api/v1/scan/<name>@<digest>` and `registry scan`: packages with
their layer, findings, whiteouts across layers, hostile layers reported while the
worker goes on, a Spack build's spec, pending until scanned, and a restart resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from appthread import start_app
from blockbuster import blockbuster_ctx
from harness import wait_for
from pushing import OCI_LAYER, OCI_LAYER_TAR, OCI_MANIFEST, push_image, push_spack_oci

from loadtest.spackgen import make_spec
from registry.cli import main
from tests.scan import layers as L
from tests.scan.apps import filesystem_app

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "spack" / "v1.1.0-signed"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scan-api")
    reg, config = filesystem_app(tmp)
    yield reg, config, tmp
    reg.stop()


@pytest.fixture(autouse=True)
def no_blocking(world):
    """Blocking calls on the app's loop raise (as in tests/api): the worker's reads of
    blobs run there, its inflating and parsing on a thread."""
    with blockbuster_ctx(["registry"]) as bb:
        yield bb


def scanned(reg, repo: str, digest: str) -> dict:
    got = wait_for(lambda: requests.get(f"{reg.url}/api/v1/scan/{repo}@{digest}", timeout=10),
                   lambda r: r.status_code != 404 or r.json().get("status") != "pending")
    assert got.status_code == 200, got.text
    return got.json()


def test_an_image_is_scanned_layer_by_layer(world, capsys, no_blocking):
    reg, _, tmp = world
    base = L.compress(L.tar(("etc/os-release", L.DEBIAN_OS_RELEASE),
                            ("var/lib/dpkg/status", L.DPKG_STATUS),
                            ("usr/lib/python3/dist-packages/old-1.dist-info/METADATA",
                             b"Name: old\nVersion: 1\n"),
                            ("etc/ssl/private/site.key", L.PRIVATE_KEY),
                            ("usr/bin/passwd", b"\x7fELF", 0o4755)), "gzip")
    # zstd bytes under a +gzip media type: the magic bytes decide
    upper = L.compress(L.tar(("usr/lib/python3/dist-packages/.wh.old-1.dist-info", b""),
                             ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                              L.PKG_INFO)), "zstd")
    image = push_image(reg, "scan/debian", "12", [base, upper], layer_type=OCI_LAYER)
    doc = scanned(reg, "scan/debian", image.digest)
    packages = {p["name"]: p for p in doc["packages"]}
    assert set(packages) == {"libc6", "curl", "six"}
    assert packages["libc6"]["source"] == "glibc"
    assert packages["libc6"]["layer"] == image.blobs[1]
    assert packages["six"]["layer"] == image.blobs[2]
    assert packages["six"]["purl"] == "pkg:pypi/six@1.16.0"
    assert packages["curl"]["purl"] == \
        "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12"
    assert {(f["kind"], f["path"]) for f in doc["findings"]} == \
        {("private-key", "etc/ssl/private/site.key"), ("setuid", "usr/bin/passwd")}
    assert doc["distro"]["osv_ecosystem"] == "Debian:12"
    assert [x["compression"] for x in doc["layers"]] == ["gzip", "zstd"]
    assert doc["errors"] == [] and doc["scanned_at"] > 0
    assert "scan" not in reg.log()  # nothing failed, nothing blocked the loop
    # `registry scan REF` prints the same inventory from the store (a command: it may
    # block, it has no other work)
    no_blocking.deactivate()
    assert main(["scan", "scan/debian:12", "--config", str(tmp / "registry.toml")]) == 0
    out = capsys.readouterr().out
    assert "deb\tlibc6\t2.36-9+deb12u4\tglibc" in out and "private-key" in out
    assert main(["scan", f"scan/debian@{image.digest}", "--json",
                 "--config", str(tmp / "registry.toml")]) == 0
    assert {p["name"] for p in json.loads(capsys.readouterr().out)["packages"]} == \
        set(packages)


def test_hostile_layers_are_reported_and_the_worker_goes_on(world):
    reg, _, _ = world
    hostile = {
        "traversal": L.tar(("../../../etc/cron.d/x", b"* * * * * root sh"),
                           ("lib/apk/db/installed", b"P:musl\nV:1.2.4-r4\n")),
        "loop": L.tar(("a", "=>", "a"), ("etc/os-release", "->", "../etc/./os-release")),
        "truncated": L.compress(L.tar(("var/lib/dpkg/status", L.DPKG_STATUS * 40)),
                                "gzip")[:-100],
        "pax": L.header(b"././@PaxHeader", size=1 << 30, kind=b"x") + bytes(1024),
    }
    digests = {k: push_image(reg, f"scan/hostile-{k}", "v1", [v],
                             layer_type=OCI_LAYER_TAR).digest for k, v in hostile.items()}
    good = push_image(reg, "scan/after", "v1",
                      [L.compress(L.tar(("lib/apk/db/installed", L.APK_INSTALLED)), "gzip")])
    errors = {k: [e["message"] for e in scanned(reg, f"scan/hostile-{k}", d)["errors"]]
              for k, d in digests.items()}
    assert any("path traversal" in e for e in errors["traversal"])
    assert "hard link to itself (a loop), not followed" in errors["loop"]
    assert "symlink loop, not followed" in errors["loop"]
    assert any("truncated gzip" in e for e in errors["truncated"])
    assert any("pax header of 1073741824 bytes exceeds" in e for e in errors["pax"])
    after = scanned(reg, "scan/after", good.digest)
    assert {p["name"] for p in after["packages"]} == {"musl", "libcrypto3"}
    assert "Traceback" not in reg.log() and "scan of" not in reg.log()


def test_a_spack_build_is_scanned_with_its_spec(world):
    reg, _, _ = world
    spec = make_spec("zlib", "1.3.1")
    push_spack_oci(reg, "scan/spack", spec)
    digest = requests.head(f"{reg.url}/v2/scan/spack/manifests/{spec.tag}", timeout=10,
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
                           ).headers["Docker-Content-Digest"]
    doc = scanned(reg, "scan/spack", digest)
    spack = [p for p in doc["packages"] if p["ecosystem"] == "spack"]
    assert [(p["name"], p["version"], p["extra"]["hash"]) for p in spack] == \
        [("zlib", "1.3.1", spec.hash)]
    assert spack[0]["purl"].startswith("pkg:spack/zlib@1.3.1?")


def test_pending_until_scanned_and_a_restart_resumes(world, no_blocking):
    reg, config, tmp = world
    feed = reg.dispatcher.ctx.scans
    feed.pause()
    try:
        image = push_image(reg, "scan/later", "v1",
                           [L.tar(("lib/apk/db/installed", L.APK_INSTALLED))])
        r = requests.get(f"{reg.url}/api/v1/scan/scan/later@{image.digest}", timeout=10)
        assert r.status_code == 404 and r.json()["status"] == "pending"
        unknown = "sha256:" + "0" * 64
        r = requests.get(f"{reg.url}/api/v1/scan/scan/later@{unknown}", timeout=10)
        assert r.status_code == 404 and "pending" not in r.text
    finally:
        reg.stop()  # stopped with the push still queued: nothing says it was scanned
    no_blocking.deactivate()  # starting may block once, serving may not
    # A build cache a real spack wrote, imported while no server runs: its images are
    # scanned by the next start too (the trivial-root image holds both prefixes).
    assert main(["spack", "import", str(FIXTURE), "--cache", "scan/fixture",
                 "--config", str(tmp / "registry.toml")]) == 0
    again = start_app(config, "filesystem", tmp)
    no_blocking.activate()
    try:
        doc = scanned(again, "scan/later", image.digest)
        assert {p["name"] for p in doc["packages"]} == {"musl", "libcrypto3"}
        tag = "trivial-root-1.0-ydsdmjltnewuhflemldo6ivetbxuugpq.spack"
        digest = requests.head(f"{again.url}/v2/scan/fixture/manifests/{tag}", timeout=10,
                               headers={"Accept": OCI_MANIFEST}
                               ).headers["Docker-Content-Digest"]
        doc = scanned(again, "scan/fixture", digest)
        found = {(p["name"], p["version"], p["extra"]["hash"]) for p in doc["packages"]}
        assert found == {("trivial-dep", "1.0", "piup5znysjy5isva2xnrllo7nths24iw"),
                         ("trivial-root", "1.0", "ydsdmjltnewuhflemldo6ivetbxuugpq")}
        assert all(p["path"].endswith("/.spack/spec.json") for p in doc["packages"])
        assert doc["errors"] == []
    finally:
        again.stop()
