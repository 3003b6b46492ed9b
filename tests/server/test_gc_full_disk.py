"""A collection on a full disk: when space is what is missing, the collector is
what must still run, and it must lose nothing while pushes fail around it."""

from __future__ import annotations

import os
import subprocess
import threading

import requests
from harness import serve_on_tmpfs
from pushing import OCI_MANIFEST, digest_of, manifest_for

MT = OCI_MANIFEST



def push(url: str, repo: str, data: bytes) -> int:
    return requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest_of(data)}", data=data,
                         timeout=60).status_code


def age_in_namespace(pid: int, root) -> None:
    """Make every blob look two hours old, inside the server's private mount."""
    subprocess.run(["nsenter", "-t", str(pid), "-m", "find", str(root / "storage" / "blobs"),
                    "-type", "f", "-exec", "touch", "-d", "-2 hours", "{}", "+"],
                   check=True, timeout=30)


def fill_in_namespace(pid: int, root) -> None:
    """Take every byte left (the tail a failed push gave back included)."""
    subprocess.run(["nsenter", "-t", str(pid), "-m", "dd", "if=/dev/zero",
                    f"of={root / 'filler'}", "bs=4096"], capture_output=True, timeout=60)


def test_collection_on_a_full_disk_frees_it_and_loses_nothing(tmp_path):
    proc, url = serve_on_tmpfs(tmp_path, 24)
    root = tmp_path / "small"
    try:
        config, layer = b'{"os":"linux"}', os.urandom(2 << 20)
        assert push(url, "disk/app", config) == 201 and push(url, "disk/app", layer) == 201
        manifest = manifest_for(config, [layer])
        r = requests.put(f"{url}/v2/disk/app/manifests/v1", data=manifest,
                         headers={"Content-Type": MT}, timeout=30)
        assert r.status_code == 201, r.text
        # Old pushes nothing names any more, until the disk is full.
        stored = 0
        for _ in range(40):
            status = push(url, "disk/old", os.urandom(1 << 20))
            if status != 201:
                assert status in (503, 507), status
                break
            stored += 1
        else:
            raise AssertionError("the disk never filled")
        assert stored >= 10
        age_in_namespace(proc.pid, root)
        fill_in_namespace(proc.pid, root)
        assert push(url, "disk/new", b"not even this") in (503, 507)

        # Clients keep pushing (and failing) while the collection runs.
        stop = threading.Event()
        statuses: list[int] = []

        def pusher() -> None:
            # Until the collection ends, or a few got through (leaving room below).
            while not stop.is_set() and statuses.count(201) < 8:
                statuses.append(push(url, "disk/new", os.urandom(256 << 10)))

        thread = threading.Thread(target=pusher)
        thread.start()
        try:
            r = requests.post(f"{url}/api/v1/gc", params={"grace": 60}, timeout=120)
        finally:
            stop.set()
            thread.join(60)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["deleted"] >= stored and report["bytes_freed"] >= stored << 20
        assert all(s in (201, 503, 507) for s in statuses), statuses

        # Space is back; what was referenced is intact.
        big = os.urandom(8 << 20)
        assert push(url, "disk/new", big) == 201
        got = requests.get(f"{url}/v2/disk/app/manifests/v1", headers={"Accept": MT},
                           timeout=30)
        assert got.status_code == 200 and got.content == manifest
        assert requests.get(f"{url}/v2/disk/app/blobs/{digest_of(layer)}", timeout=30).content \
            == layer
        assert requests.get(f"{url}/v2/disk/new/blobs/{digest_of(big)}", timeout=30).content == big
        # A second collection finds nothing half done (no trash, no lease left).
        again = requests.post(f"{url}/api/v1/gc", params={"grace": 60}, timeout=120)
        assert again.status_code == 200 and again.json()["deleted"] == 0
    finally:
        proc.terminate()
        proc.wait(10)
    assert "Traceback" not in (tmp_path / "small.log").read_text()
