"""A 2 GiB blob goes in and out with the server's memory flat: streams, not buffers."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
from urllib.parse import urlsplit

import requests

SIZE = 2 << 30
CHUNK = 1 << 20


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def chunks(seed: bytes):
    for i in range(SIZE // CHUNK):
        yield i.to_bytes(8, "big") + seed[8:]


def test_two_gib_push_and_pull_with_bounded_memory(start_registry):
    reg = start_registry()
    repo = reg.repo("big")
    seed = os.urandom(CHUNK)
    hasher = hashlib.sha256()
    for c in chunks(seed):
        hasher.update(c)
    digest = f"sha256:{hasher.hexdigest()}"

    # Warm up the code paths, then take the baseline.
    r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/?digest=sha256:"
                      + hashlib.sha256(b"x").hexdigest(), data=b"x")
    assert r.status_code == 201
    baseline = rss_bytes(reg.pid)

    with PeakRss(reg.pid) as peak:
        r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202
        location = r.headers["Location"]
        u = urlsplit(reg.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        conn.putrequest("PUT", f"{location}?digest={digest}")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(SIZE))
        conn.endheaders()
        for c in chunks(seed):
            conn.send(c)
        resp = conn.getresponse()
        assert resp.status == 201, resp.read()
        assert resp.getheader("Docker-Content-Digest") == digest
        resp.read()

        conn.request("GET", f"/v2/{repo}/blobs/{digest}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert int(resp.getheader("Content-Length")) == SIZE
        pulled, total = hashlib.sha256(), 0
        while block := resp.read(CHUNK):
            pulled.update(block)
            total += len(block)
        conn.close()

    assert total == SIZE
    assert f"sha256:{pulled.hexdigest()}" == digest
    growth = peak.peak - baseline
    print(f"server RSS: baseline {baseline / 2**20:.1f} MiB, peak growth {growth / 2**20:.1f} MiB")
    assert growth < 100 * 1024 * 1024, f"server RSS grew by {growth / 2**20:.1f} MiB"
    assert "Traceback" not in reg.log()
