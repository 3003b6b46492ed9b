"""Scan results of deleted manifests go, with their summaries in the index: at once when
the last repository holding the manifest deletes it (through the hooks), and at the
next start's catch-up when the process stopped between the deletion and the cleanup.
`registry reindex` restores the summaries of the results that stay."""

from __future__ import annotations

import sqlite3

import requests
from harness import wait_for
from pushing import OCI_LAYER, push_image

from registry.cli import main
from tests.scan import layers as L
from tests.scan.apps import filesystem_app

IMAGE_LAYER = L.compress(L.tar(("etc/os-release", L.DEBIAN_OS_RELEASE),
                               ("var/lib/dpkg/status", L.DPKG_STATUS)), "gzip")


def summarised(tmp) -> set[str]:
    """The digests the index file holds a scan summary of."""
    conn = sqlite3.connect(tmp / "index.sqlite")
    try:
        return {r[0] for r in conn.execute("SELECT digest FROM scans")}
    finally:
        conn.close()


def result_files(tmp, digest: str) -> list:
    return list((tmp / "storage").rglob(f"{digest.split(':')[1]}.json"))


def scanned(reg, repo: str, digest: str) -> None:
    got = wait_for(lambda: requests.get(f"{reg.url}/api/v1/scan/{repo}@{digest}", timeout=10),
                   lambda r: r.status_code == 200)
    assert got.status_code == 200, got.text


def delete(reg, repo: str, digest: str) -> None:
    r = requests.delete(f"{reg.url}/v2/{repo}/manifests/{digest}", timeout=10)
    assert r.status_code == 202, r.text


def test_results_of_deleted_manifests_go(tmp_path):
    reg, _ = filesystem_app(tmp_path)
    try:
        feed = reg.dispatcher.ctx.scans
        image = push_image(reg, "clean/one", "1", [IMAGE_LAYER], layer_type=OCI_LAYER)
        push_image(reg, "clean/two", "1", [IMAGE_LAYER], layer_type=OCI_LAYER)
        kept = push_image(reg, "clean/kept", "1", [b"other"], layer_type=OCI_LAYER)
        scanned(reg, "clean/one", image.digest)
        scanned(reg, "clean/kept", kept.digest)
        assert wait_for(lambda: summarised(tmp_path),
                        lambda got: {image.digest, kept.digest} <= got) >= {image.digest,
                                                                            kept.digest}
        # One of two repositories deletes it: the result holds for the other.
        delete(reg, "clean/one", image.digest)
        wait_for(lambda: feed.queued, lambda n: n == 0)
        scanned(reg, "clean/two", image.digest)
        assert image.digest in summarised(tmp_path)
        # The last one deletes it: the result and its summary go.
        delete(reg, "clean/two", image.digest)
        assert wait_for(lambda: result_files(tmp_path, image.digest), lambda f: not f) == []
        assert wait_for(lambda: summarised(tmp_path), lambda got: image.digest not in got) \
            == {kept.digest}

        # Stopped between a deletion and its cleanup (the worker held): the result stays...
        feed.pause()
        delete(reg, "clean/kept", kept.digest)
        wait_for(lambda: feed.queued, lambda n: n == 1)
    finally:
        reg.stop()
    assert result_files(tmp_path, kept.digest) and kept.digest in summarised(tmp_path)
    # ...until the next start's catch-up finds no repository holding it.
    reg, _ = filesystem_app(tmp_path)
    try:
        assert wait_for(lambda: result_files(tmp_path, kept.digest), lambda f: not f) == []
        assert wait_for(lambda: summarised(tmp_path), lambda got: not got) == set()
        last = push_image(reg, "clean/last", "1", [b"last"], layer_type=OCI_LAYER)
        scanned(reg, "clean/last", last.digest)
        assert "Traceback" not in reg.log()
    finally:
        reg.stop()
    # The index is derived: a reindex reads the summaries back from the results.
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    conn.execute("DELETE FROM scans")
    conn.commit()
    conn.close()
    assert main(["reindex", "--config", str(tmp_path / "registry.toml")]) == 0
    assert summarised(tmp_path) == {last.digest}
