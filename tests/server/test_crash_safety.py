"""A kill -9 or a full disk mid-upload never makes a partial blob visible or corrupts another."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import requests
from harness import child_env, serve_on_tmpfs, wait_for
from prometheus_client.parser import text_string_to_metric_families
from pushing import digest_of


def test_kill_9_mid_upload_then_resume(start_registry, tmp_path):
    reg = start_registry(tmp=tmp_path)
    repo = "crash/repo"
    data = os.urandom(6 << 20)
    digest = digest_of(data)
    r = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/")
    location = r.headers["Location"]
    r = requests.patch(f"{reg.url}{location}", data=data[: 1 << 20],
                       headers={"Content-Range": f"0-{(1 << 20) - 1}",
                                "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == f"0-{(1 << 20) - 1}"

    # The last request dies half-way: the server is killed with 2 MiB of 5 received.
    u = urlsplit(reg.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest("PUT", f"{location}?digest={digest}")
    conn.putheader("Content-Length", str(len(data) - (1 << 20)))
    conn.endheaders()
    conn.send(data[1 << 20: 3 << 20])
    os.kill(reg.pid, signal.SIGKILL)
    reg.process.wait(10)
    conn.close()

    reg2 = start_registry(tmp=tmp_path)
    assert requests.head(f"{reg2.url}/v2/{repo}/blobs/{digest}").status_code == 404
    status = requests.get(f"{reg2.url}{location}")
    assert status.status_code == 204
    have = int(status.headers["Range"].split("-")[1]) + 1
    assert 1 << 20 <= have <= 3 << 20  # whatever arrived is a prefix of the data
    r = requests.patch(f"{reg2.url}{location}", data=data[have:],
                       headers={"Content-Range": f"{have}-{len(data) - 1}"})
    assert r.status_code == 202
    r = requests.put(f"{reg2.url}{location}?digest={digest}")
    assert r.status_code == 201, r.text
    got = requests.get(f"{reg2.url}/v2/{repo}/blobs/{digest}")
    assert got.status_code == 200 and digest_of(got.content) == digest


def test_full_disk_mid_upload_loses_nothing(tmp_path):
    proc, url = serve_on_tmpfs(tmp_path, 24)
    try:
        repo = "disk/repo"
        small = os.urandom(4 << 20)
        r = requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest_of(small)}", data=small)
        assert r.status_code == 201

        big = os.urandom(40 << 20)
        r = requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest_of(big)}", data=big)
        assert r.status_code in (503, 507), r.text
        assert r.json()["errors"][0]["message"]
        assert requests.head(f"{url}/v2/{repo}/blobs/{digest_of(big)}").status_code == 404

        # The blob pushed before is intact, and the space of the failed one is free again.
        got = requests.get(f"{url}/v2/{repo}/blobs/{digest_of(small)}")
        assert got.status_code == 200 and got.content == small
        again = os.urandom(8 << 20)
        r = requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest_of(again)}", data=again)
        assert r.status_code == 201, r.text
        assert requests.get(f"{url}/v2/{repo}/blobs/{digest_of(again)}").content == again
    finally:
        proc.terminate()
        proc.wait(10)
    assert "Traceback" not in (tmp_path / "small.log").read_text()


def test_client_disconnect_mid_chunk_leaves_upload_resumable(registry):
    repo = registry.repo("disconnect")
    data = os.urandom(3 << 20)
    location = requests.post(f"{registry.url}/v2/{repo}/blobs/uploads/").headers["Location"]
    u = urlsplit(registry.url)
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
                  f"Content-Range: 0-{len(data) - 1}\r\n\r\n".encode())
        s.sendall(data[: 1 << 20])
    # The short chunk was rolled back: the upload is where it was, and can be completed.
    for _ in range(50):
        status = requests.get(f"{registry.url}{location}")
        if status.headers.get("Range") == "0-0":
            break
        time.sleep(0.05)
    assert status.status_code == 204 and status.headers["Range"] == "0-0"
    r = requests.put(f"{registry.url}{location}?digest={digest_of(data)}", data=data)
    assert r.status_code == 201
    assert requests.get(f"{registry.url}/v2/{repo}/blobs/{digest_of(data)}").content == data
    # A client going away is ordinary: no traceback, no ERROR line in the log.
    assert "Traceback" not in registry.log() and " ERROR " not in registry.log()


def test_abandoned_uploads_are_purged(start_registry):
    reg = start_registry(config="[storage]\nupload_purge_after = 2\n")
    repo = "purge/repo"
    stale = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/").headers["Location"]
    requests.patch(f"{reg.url}{stale}", data=b"abc")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if requests.get(f"{reg.url}{stale}").status_code == 404:
            break
        time.sleep(0.5)
    assert requests.get(f"{reg.url}{stale}").status_code == 404
    # A session in active use is kept: each chunk refreshes it.
    live = requests.post(f"{reg.url}/v2/{repo}/blobs/uploads/").headers["Location"]
    data = b""
    for i in range(6):
        r = requests.patch(f"{reg.url}{live}", data=b"x")
        assert r.status_code == 202, f"chunk {i}: {r.status_code}"
        data += b"x"
        time.sleep(0.5)
    assert requests.put(f"{reg.url}{live}?digest={digest_of(data)}").status_code == 201


def _kill_tree(pid: int) -> None:
    """SIGKILL a registry and its workers (children first: no orderly anything)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                              text=True).stdout.split()
    for child in children:
        try:
            os.kill(int(child), signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.kill(pid, signal.SIGKILL)


def uploads_in_progress(url: str) -> float:
    """registry_uploads_in_progress on /metrics, added up over the workers."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "registry_uploads_in_progress")


def test_kill_9_during_50_concurrent_pushes(tmp_path):
    """kill -9 (every worker) while 50 clients push, then restart on the same data:
    every stored blob hashes to its name (scrub finds nothing), no scratch file is
    left visible, and the uploads cut off resume from where the store says."""
    import threading

    from harness import launch

    reg = launch(tmp_path, config="[server]\nworkers = 2\n")
    blobs = [os.urandom(3 << 20) for _ in range(50)]
    locations: dict[int, str] = {}
    started = threading.Barrier(51)

    def push(i: int) -> None:
        data = blobs[i]
        try:
            r = requests.post(f"{reg.url}/v2/crash/n{i}/blobs/uploads/", timeout=30)
            locations[i] = r.headers["Location"]
            requests.patch(f"{reg.url}{locations[i]}", data=data[: 1 << 20], timeout=30,
                           headers={"Content-Range": f"0-{(1 << 20) - 1}"})
            started.wait(30)

            def rest():
                for k in range(1, 3):
                    yield data[k << 20:(k + 1) << 20]
                    time.sleep(0.3)

            requests.put(f"{reg.url}{locations[i]}?digest={digest_of(data)}", data=rest(),
                         timeout=30)
        except (requests.RequestException, threading.BrokenBarrierError):
            pass

    threads = [threading.Thread(target=push, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    started.wait(60)
    # Kill with most of them mid-body: poll the server's count of uploads in progress
    # (whatever the count at the deadline, the checks below hold for every upload).
    wait_for(lambda: uploads_in_progress(reg.url), lambda n: n >= 25, 10)
    _kill_tree(reg.process.pid)
    reg.process.wait(10)
    for t in threads:
        t.join(60)

    again = launch(tmp_path, config="[server]\nworkers = 2\n")
    try:
        scratch = [p.name for p in (tmp_path / "data" / "storage" / "_tmp").iterdir()
                   if not p.name.startswith("keep-")]
        assert scratch == []
        resumed = 0
        for i, location in sorted(locations.items()):
            data = blobs[i]
            head = requests.head(f"{again.url}/v2/crash/n{i}/blobs/{digest_of(data)}", timeout=10)
            if head.status_code == 200:  # it finished before the kill: whole and right
                got = requests.get(f"{again.url}/v2/crash/n{i}/blobs/{digest_of(data)}", timeout=30)
                assert got.content == data
                continue
            status = requests.get(f"{again.url}{location}", timeout=10)
            assert status.status_code == 204, status.text
            have = int(status.headers["Range"].split("-")[1]) + 1
            have = 0 if status.headers["Range"] == "0-0" else have
            r = requests.put(f"{again.url}{location}?digest={digest_of(data)}", data=data[have:],
                             timeout=60, headers={"Content-Range": f"{have}-{len(data) - 1}"}
                             if have else {})
            assert r.status_code == 201, r.text
            resumed += 1
            got = requests.get(f"{again.url}/v2/crash/n{i}/blobs/{digest_of(data)}", timeout=30)
            assert got.content == data
        assert resumed > 0
    finally:
        again.stop()
    scrub = subprocess.run([sys.executable, "-m", "registry", "scrub", "--json", "--data",
                            str(tmp_path / "data")], capture_output=True, text=True,
                           env=child_env(), timeout=300)
    assert scrub.returncode == 0, scrub.stdout + scrub.stderr
