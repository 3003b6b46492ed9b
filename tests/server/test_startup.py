"""Starting and stopping as an operator sees it: one clear line and exit status 2
for every startup mistake, one instance per store and port, the startup line, an
access log with request ids, a drain on SIGTERM that keeps a cut upload's bytes,
SIGHUP reloading the TLS certificate."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from harness import child_env, free_port, launch, wait_for
from prometheus_client.parser import text_string_to_metric_families
from tlsutil import make_cert


def serve(tmp, *args: str, config: str | None = None, env: dict | None = None,
          wait: float = 30) -> subprocess.CompletedProcess:
    """`registry serve ARGS` expected to exit by itself (a refused start)."""
    cmd = [sys.executable, "-m", "registry", "serve", *args]
    if config is not None:
        path = tmp / f"c{time.monotonic_ns()}.toml"
        path.write_text(config)
        cmd += ["--config", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, env=child_env(env), cwd=tmp,
                          timeout=wait)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("registry: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_one_instance_per_store_and_per_port(tmp_path):
    first = launch(tmp_path / "a", config="[server]\nworkers = 2\n")
    try:
        same_data = serve(tmp_path, "--data", str(first.data_dir),
                          "--listen", f"127.0.0.1:{free_port()}")
        line = one_line(same_data)
        assert "another registry" in line and str(first.process.pid) in line
        port = first.host.rsplit(":", 1)[1]
        same_port = serve(tmp_path, "--data", str(tmp_path / "b"),
                          "--listen", f"127.0.0.1:{port}", config="[server]\nworkers = 2\n")
        assert f"cannot listen on 127.0.0.1:{port}" in one_line(same_port)
        assert requests.get(f"{first.url}/v2/", timeout=10).status_code == 200
    finally:
        first.stop()
    # The lock goes with the process: the next instance starts.
    launch(tmp_path / "a").stop()


def test_startup_mistakes_are_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "cert.pem").write_text("garbage")
    (tmp_path / "key.pem").write_text("garbage")
    listens = ("http://127.0.0.1:5000", "300.1.1.1:5000", "::1:5000")
    # Five independent refused starts, each its own process and files: run at once,
    # as each spends most of its time importing.
    with ThreadPoolExecutor(5) as pool:
        bad_dir = pool.submit(serve, tmp_path, "--data", str(tmp_path / "file" / "data"),
                              "--listen", f"127.0.0.1:{free_port()}")
        bad_cert = pool.submit(serve, tmp_path, "--data", str(tmp_path / "d"), "--listen",
                               f"127.0.0.1:{free_port()}", config=(
                                   f'[server]\ntls_cert = "{tmp_path / "cert.pem"}"\n'
                                   f'tls_key = "{tmp_path / "key.pem"}"\n'))
        bad_listens = [pool.submit(serve, tmp_path, "--listen", listen) for listen in listens]
    assert "cannot create the directory" in one_line(bad_dir.result())
    assert "cannot load the TLS certificate" in one_line(bad_cert.result())
    for listen, future in zip(listens, bad_listens, strict=True):
        done = future.result()
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert listen in done.stderr


def test_index_beside_the_store_startup_line_version_and_server_header(tmp_path):
    root = tmp_path / "srv" / "reg"
    reg = launch(tmp_path / "run", data=False, env={"REGISTRY_STORAGE_ROOT": str(root)})
    try:
        assert (tmp_path / "srv" / "index.sqlite").exists()
        assert not (tmp_path / "run" / "data").exists()
        line = next(line for line in reg.log().splitlines() if "listening on" in line)
        assert f"http://{reg.host}" in line and str(root) in line
        assert str(tmp_path / "srv" / "index.sqlite") in line
        r = requests.get(f"{reg.url}/v2/", timeout=10)
        assert r.headers["Server"] == "registry"
    finally:
        reg.stop()
    version = subprocess.run([sys.executable, "-m", "registry", "--version"],
                             capture_output=True, text=True, env=child_env(), timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("registry ")


def test_access_log_lines_and_request_ids(tmp_path):
    reg = launch(tmp_path / "text", config='[server]\ntrusted_proxies = ["127.0.0.1"]\n')
    try:
        r = requests.get(f"{reg.url}/v2/nothing/here/manifests/v1?secret=token", timeout=10,
                         headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1"})
        rid = r.headers["X-Request-Id"]
        mine = requests.get(f"{reg.url}/v2/", headers={"X-Request-Id": "job-7.step-3"},
                            timeout=10)
        assert mine.headers["X-Request-Id"] == "job-7.step-3"
        hostile = requests.get(f"{reg.url}/v2/", headers={"X-Request-Id": "a b;c" * 30},
                               timeout=10)
        assert hostile.headers["X-Request-Id"] != "a b;c" * 30  # not ours to repeat
        log = wait_for(reg.log, lambda text: rid in text and "job-7.step-3" in text, 10)
        line = next(line for line in log.splitlines() if rid in line)
        assert '"GET /v2/nothing/here/manifests/v1 HTTP/1.1" 404 ' in line
        assert "203.0.113.9" in line and "secret=token" not in line
    finally:
        reg.stop()
    reg = launch(tmp_path / "json", config='[server]\nlog_format = "json"\n')
    try:
        r = requests.get(f"{reg.url}/v2/", timeout=10)
        rid = r.headers["X-Request-Id"]
        log = wait_for(reg.log, lambda text: rid in text, 10)
        doc = json.loads(next(line for line in log.splitlines()
                              if rid in line).split(": ", 1)[1])
        assert doc["status"] == 200 and doc["path"] == "/v2/" and doc["client"] == "127.0.0.1"
        assert doc["request_id"] == rid and doc["ms"] >= 0
    finally:
        reg.stop()


def _uploads_in_progress(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "registry_uploads_in_progress")


def test_sigterm_drains_and_a_cut_upload_resumes(tmp_path):
    config = "[server]\ndrain_seconds = 2\n"
    reg = launch(tmp_path, config=config)
    start = requests.post(f"{reg.url}/v2/drain/app/blobs/uploads/", timeout=10)
    location = start.headers["Location"]
    data = os.urandom(3 << 20)
    sent = threading.Event()

    def slow_body():
        yield data[: 1 << 20]
        sent.set()
        time.sleep(6)  # longer than the drain
        yield data[1 << 20:]

    def patch():
        try:
            requests.patch(f"{reg.url}{location}", data=slow_body(), timeout=30,
                           headers={"Content-Type": "application/octet-stream"})
        except requests.RequestException:
            pass

    worker = threading.Thread(target=patch)
    worker.start()
    assert sent.wait(10)
    # The server has the PATCH in hand (its body half sent) before it gets SIGTERM.
    assert wait_for(lambda: _uploads_in_progress(reg.url), lambda n: n >= 1, 10) >= 1
    began = time.monotonic()
    reg.process.send_signal(signal.SIGTERM)
    reg.process.wait(20)
    assert time.monotonic() - began < 10
    worker.join(20)
    log = reg.log()
    assert "stopping: no new connections" in log and "stopped" in log
    assert "Traceback" not in log
    # Restart on the same data: the session kept what arrived, and resumes.
    again = launch(tmp_path, config=config)
    try:
        status = requests.get(f"{again.url}{location}", timeout=10)
        assert status.status_code == 204
        have = int(status.headers["Range"].split("-")[1]) + 1
        assert 0 < have <= len(data)
        r = requests.patch(f"{again.url}{location}", data=data[have:], timeout=30, headers={
            "Content-Range": f"{have}-{len(data) - 1}",
            "Content-Type": "application/octet-stream"})
        assert r.status_code == 202, r.text
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        done = requests.put(f"{again.url}{r.headers['Location']}&digest={digest}"
                            if "?" in r.headers["Location"] else
                            f"{again.url}{r.headers['Location']}?digest={digest}", timeout=30)
        assert done.status_code == 201, done.text
    finally:
        again.stop()


def _served_cert(host: str, port: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw, \
            ctx.wrap_socket(raw) as tls:
        return tls.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate(tmp_path):
    cert, key = make_cert(tmp_path)
    reg = launch(tmp_path / "reg", config=f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n',
                 scheme="https", verify=str(cert))
    try:
        host, port = reg.host.rsplit(":", 1)
        before = _served_cert(host, int(port))
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        new_cert, new_key = make_cert(fresh)
        os.replace(new_cert, cert)
        os.replace(new_key, key)
        reg.process.send_signal(signal.SIGHUP)
        after = wait_for(lambda: _served_cert(host, int(port)), lambda got: got != before, 10)
        assert after != before
        assert "reloaded the TLS certificate" in reg.log()
    finally:
        reg.stop()


def test_debug_logging_keeps_botocore_quiet():
    from registry.config import Config
    from registry.server import _logging

    config = Config()
    config.server.log_level = "debug"
    _logging(config)
    import logging

    assert not logging.getLogger("botocore").isEnabledFor(logging.DEBUG)



@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_never_stops_the_server(tmp_path, workers):
    reg = launch(tmp_path, config=f"[server]\nworkers = {workers}\n")
    try:
        reg.process.send_signal(signal.SIGHUP)
        # Once the signal was handled (the log says so), the server still runs.
        assert "no TLS certificate to reload" in wait_for(
            reg.log, lambda text: "no TLS certificate to reload" in text, 10)
        assert reg.process.poll() is None
        assert requests.get(f"{reg.url}/v2/", timeout=10).status_code == 200
    finally:
        reg.stop()
