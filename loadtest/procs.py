"""Reference servers the stand-alone harnesses (`fanout`, `spack`) start on
127.0.0.1: docker-registry and nginx, each its own session, stopped at the end."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import time
from pathlib import Path
from typing import IO

import aiohttp

NGINX = """\
daemon off;
worker_processes {workers};
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    client_body_temp_path {tmp}/cb;
    proxy_temp_path {tmp}/px;
    fastcgi_temp_path {tmp}/fc;
    uwsgi_temp_path {tmp}/uw;
    scgi_temp_path {tmp}/sc;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {tls}
        root {www};
        location = /v2/ {{ return 200 "{{}}"; }}
    }}
}}
"""


class Proc:
    """A server process of this run (docker-registry, nginx)."""

    def __init__(self, argv: list[str], port: int, log: Path, scheme: str = "http") -> None:
        self.url = f"{scheme}://127.0.0.1:{port}"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def nginx(binary: str, tmp: Path, port: int, www: Path, cert: Path | None = None,
          key: Path | None = None, workers: int | None = None) -> Proc:
    """nginx serving `www` as static files (over TLS with `cert` and `key`), with
    `workers` processes (default: one per core)."""
    for d in ("cb", "px", "fc", "uw", "sc"):
        (tmp / d).mkdir(exist_ok=True)
    user = "user root root;" if os.geteuid() == 0 else ""
    tls = f"ssl_certificate {cert};\n        ssl_certificate_key {key};" if cert else ""
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX.format(tmp=tmp, port=port, user=user, www=www,
                                 ssl=" ssl" if cert else "", tls=tls,
                                 workers=workers or "auto"))
    return Proc([binary, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)], port,
                tmp / "nginx.log", "https" if cert else "http")


async def wait_ready(url: str, ctx: ssl.SSLContext | None = None,
                     limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    conn = aiohttp.TCPConnector(ssl=ctx if ctx is not None else True)
    async with aiohttp.ClientSession(connector=conn) as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(f"{url}/v2/") as r:
                    if r.status in (200, 401):
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return out


def rss_mb(pid: int) -> float:
    """The resident set of the process and its children now, MB."""
    total = 0.0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident set (VmHWM) among the process and its children
    (a registry's workers), MB."""
    peaks = []
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return max(peaks) if peaks else float("nan")


def stop(proc: subprocess.Popen, log: IO[bytes]) -> None:
    """Stop a server a harness started (SIGTERM, then wait for it) and close its log."""
    proc.terminate()
    proc.wait(120)
    log.close()
