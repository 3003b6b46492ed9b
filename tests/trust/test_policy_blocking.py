"""`block=`, `allow=` and `scan=required` in `[trust] policies`: an in-process registry
(tests/appthread.py) whose scanner matches a Debian image's dpkg status against an OSV
fixture advisory imported with `registry advisories import`; pulls refused naming the
advisory, accepted ones let through, unscanned ones held, an index's children judged
one by one, `sign=` waiting for the scan; and podman refused, then served once the
advisory is allowed (a SIGHUP reload of a server process)."""

from __future__ import annotations

import gzip
import hashlib
import json
import signal
from pathlib import Path

import pytest
import requests
from clients.conftest import tools_for
from harness import launch, wait_for
from policyutil import start
from pushing import OCI_INDEX, OCI_MANIFEST, image_config, push_image, put_manifest

from registry.cli import main
from tests.scan import layers as L
from tests.scan.osvdocs import CVSS_CRITICAL, advisory, write_dir

POLICIES = ["block/* block=high", "allowed/* block=high allow=cve-2023-6246",
            "held/* block=critical scan=required",
            "gated/* require=regkey sign=regkey block=high"]
GLIBC = advisory("DSA-5611-1", "Debian:12", "glibc", fixed="2.36-9+deb12u5",
                 aliases=["CVE-2023-6246"], severity=[{"type": "CVSS_V3", "score": CVSS_CRITICAL}])
DEBIAN = L.tar(("etc/os-release", L.DEBIAN_OS_RELEASE), ("var/lib/dpkg/status", L.DPKG_STATUS))
PLAIN = L.tar(("etc/motd", b"no packages here\n"))
SIX = L.tar(("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", L.PKG_INFO))


def import_advisories(data: Path, name: str, docs: list[dict]) -> None:
    """`registry advisories import` into the store of a registry under `data`."""
    data.mkdir(parents=True, exist_ok=True)
    toml = data / "registry.toml"
    toml.write_text(f'[storage]\nroot = "{data / "storage"}"\n'
                    f'[index]\npath = "{data / "index.sqlite"}"\n')
    assert main(["advisories", "import", write_dir(str(data / name), docs),
                 "--config", str(toml)]) == 0


def push(reg, repo: str, tag: str | None, tar: bytes, note: str = ""):
    """An image with one gzip layer, its config naming the layer's diff_id (podman checks)."""
    config = image_config(note=note, rootfs={
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]})
    return push_image(reg, repo, tag, [gzip.compress(tar, 1, mtime=0)], config=config)


def scanned(reg, repo: str, digest: str) -> None:
    got = wait_for(lambda: requests.get(f"{reg.url}/api/v1/scan/{repo}@{digest}", timeout=10),
                   lambda r: r.status_code == 200)
    assert got.status_code == 200, got.text


def get(reg, repo: str, ref: str, kind: str = "manifests", method: str = "GET"):
    return requests.request(method, f"{reg.url}/v2/{repo}/{kind}/{ref}", timeout=30,
                            headers={"Accept": f"{OCI_MANIFEST},{OCI_INDEX}"})


def refused(resp, *words: str) -> dict:
    assert resp.status_code == 403, (resp.status_code, resp.text)
    error = resp.json()["errors"][0]
    assert error["code"] == "DENIED" and all(w in error["message"] for w in words), error
    return error


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("blocking")
    import_advisories(tmp / "data", "osv", [GLIBC])
    app = start(tmp, POLICIES)
    yield app
    app.stop()


def test_block_names_the_advisory_and_allow_lets_it_through(reg):
    repo = reg.repo("block")
    bad = push(reg, repo, "v1", DEBIAN)
    clean = push(reg, repo, "v2", PLAIN)
    scanned(reg, repo, bad.digest)
    scanned(reg, repo, clean.digest)
    for ref in ("v1", bad.digest):
        error = refused(get(reg, repo, ref), "DSA-5611-1", "block/*")
        assert error["detail"]["advisories"] == ["DSA-5611-1"]
    assert get(reg, repo, "v1", method="HEAD").status_code == 200  # no bytes
    for blob in bad.blobs:  # reachable only through the blocked manifest
        refused(get(reg, repo, blob, "blobs"), "DSA-5611-1")
    assert get(reg, repo, "v2").status_code == 200
    # The same image where the rule accepts the advisory by its alias (any case).
    allowed = reg.repo("allowed")
    assert push(reg, allowed, "v1", DEBIAN).digest == bad.digest  # scanned already
    assert get(reg, allowed, "v1").status_code == 200
    for blob in bad.blobs:
        assert get(reg, allowed, blob, "blobs").status_code == 200


def test_an_advisory_import_takes_effect(reg):
    """six was clean when scanned; an import naming it blocks its next pull (the other
    tests push no six)."""
    repo = reg.repo("block")
    image = push(reg, repo, "v1", SIX, "six")
    scanned(reg, repo, image.digest)
    import_advisories(reg.data_dir, "six", [advisory(
        "PYSEC-2099-6", "PyPI", "six", fixed="1.17.0",
        severity=[{"type": "CVSS_V3", "score": CVSS_CRITICAL}])])
    refused(get(reg, repo, "v1"), "PYSEC-2099-6")


def test_scan_required_holds_until_scanned(reg):
    repo = reg.repo("held")
    feed = reg.dispatcher.ctx.scans
    feed.pause()
    try:
        image = push(reg, repo, "v1", PLAIN, "held")
        refused(get(reg, repo, "v1"), "not scanned yet")
        refused(get(reg, repo, image.blobs[1], "blobs"), "not scanned yet")
    finally:
        feed.pause(False)
    got = wait_for(lambda: get(reg, repo, "v1"), lambda r: r.status_code == 200)
    assert got.status_code == 200, got.text
    # block=critical here: the critical glibc finding is refused once scanned.
    bad = push(reg, repo, "v2", DEBIAN, "held")
    scanned(reg, repo, bad.digest)
    refused(get(reg, repo, "v2"), "DSA-5611-1")


def test_index_children_judged_one_by_one(reg):
    repo = reg.repo("block")
    bad = push(reg, repo, None, DEBIAN, "amd64")
    good = push(reg, repo, None, PLAIN, "arm64")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": img.digest, "size": len(img.manifest),
         "platform": {"os": "linux", "architecture": arch}}
        for img, arch in ((bad, "amd64"), (good, "arm64"))]}
    put_manifest(reg, repo, "multi", json.dumps(index).encode(), OCI_INDEX)
    scanned(reg, repo, bad.digest)
    scanned(reg, repo, good.digest)
    assert get(reg, repo, "multi").status_code == 200
    refused(get(reg, repo, bad.digest), "DSA-5611-1")
    assert get(reg, repo, good.digest).status_code == 200


def test_sign_waits_for_a_passing_scan(reg):
    """sign= with block=: the clean image is signed once scanned (so `require=` serves
    it); the vulnerable one never is."""
    repo = reg.repo("gated")
    bad = push(reg, repo, "v1", DEBIAN, "gated")
    good = push(reg, repo, "v2", PLAIN, "gated")
    got = wait_for(lambda: get(reg, repo, "v2"), lambda r: r.status_code == 200)
    assert got.status_code == 200, got.text
    held = f"{repo}@{bad.digest} held back by a gate (refused)"
    assert held in wait_for(reg.log, lambda log: held in log)
    refused(get(reg, repo, "v1"), "unsigned")
    assert good.digest != bad.digest


def test_podman_refused_then_allowed(tmp_path):
    """podman sees the 403 naming the advisory; after `allow=` for it and a SIGHUP
    (tests/trust/test_policy_clients.py's setup: a server process) it pulls the image."""
    def config(policy: str) -> str:
        return f'[trust]\npolicies = ["{policy}"]\n'

    import_advisories(tmp_path / "data", "osv", [GLIBC])
    reg = launch(tmp_path, config=config("prod/* block=high"))
    try:
        image = push(reg, "prod/app", "v1", DEBIAN)
        scanned(reg, "prod/app", image.digest)
        tools = tools_for(tmp_path / "ctools", reg)
        name = tools.image_name("prod/app", "v1")
        pulled = tools.podman("pull", "--tls-verify=false", name, check=False)
        assert pulled.returncode != 0
        assert "denied" in pulled.stderr and "DSA-5611-1" in pulled.stderr, pulled.stderr
        (tmp_path / "registry.toml").write_text(config("prod/* block=high allow=DSA-5611-1"))
        reg.process.send_signal(signal.SIGHUP)
        got = wait_for(lambda: get(reg, "prod/app", "v1"), lambda r: r.status_code == 200)
        assert got.status_code == 200, got.text
        tools.podman("pull", "--tls-verify=false", name)
        out = tools.podman("image", "inspect", "--format", "{{.Digest}}", name)
        assert out.stdout.strip() == image.digest
    finally:
        reg.stop()
