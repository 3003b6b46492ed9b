"""Memory of one worker serving a large blob over TLS to many clients at once.

    python -m loadtest tls-rss [--clients 16] [--mib 64] [--rounds 2] [--workers 1]

Starts our registry over TLS on 127.0.0.1 (one worker, a throwaway
certificate), pushes one blob of MIB MiB, reads it once (warm-up), then
samples the worker's resident set (VmRSS) before, during (the peak, sampled
every 20 ms) and after ROUNDS rounds of CLIENTS concurrent TLS GETs of the
whole blob (aiohttp clients in this process, each checking the length).
Prints the growth per connection, MB: (peak - before) / CLIENTS and
(after - before) / CLIENTS. `--env K=V` passes an environment variable to
the server (e.g. MALLOC_ARENA_MAX=2, to compare allocator settings).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

from loadtest.spack_bench import push_blob

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import launch
from tlsutil import make_cert

REPO = "bench/tls"


def rss_mb(pid: int) -> float:
    """VmRSS of process `pid`, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Peak:
    """The largest VmRSS of a process while the context is open (20 ms samples)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(0.02)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def read_all(ctx: ssl.SSLContext, url: str, clients: int, size: int,
                   digest: str = "") -> None:
    """`clients` TLS connections at once, each reading the whole body of `url`
    (and checking it against `digest` when given)."""

    async def one() -> None:
        conn = aiohttp.TCPConnector(ssl=ctx, force_close=True)
        hasher = hashlib.sha256() if digest else None
        async with aiohttp.ClientSession(connector=conn) as s, s.get(url) as r:
            assert r.status == 200, r.status
            got = 0
            async for chunk in r.content.iter_chunked(1 << 20):
                got += len(chunk)
                if hasher is not None:
                    hasher.update(chunk)
            assert got == size, (got, size)
        assert hasher is None or f"sha256:{hasher.hexdigest()}" == digest

    await asyncio.gather(*(one() for _ in range(clients)))


async def settle(pid: int, seconds: float = 0.5) -> float:
    """VmRSS once the connections are closed: the smallest of a few samples."""
    samples = []
    for _ in range(max(1, int(seconds / 0.1))):
        await asyncio.sleep(0.1)
        samples.append(rss_mb(pid))
    return min(samples)


async def measure(url: str, pid: int, ctx: ssl.SSLContext, clients: int, mib: int,
                  rounds: int) -> dict:
    """Push a blob, warm up, then the RSS before, at peak and after the rounds."""
    data = os.urandom(1 << 20) * mib
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        digest = await push_blob(s, url, data, REPO)
    size = len(data)
    del data
    blob = f"{url}/v2/{REPO}/blobs/{digest}"
    await read_all(ctx, blob, 1, size, digest)  # every code path once, the bytes checked
    before = await settle(pid)
    after_rounds = []
    busy = 0.0
    with Peak(pid) as peak:
        for _ in range(rounds):
            start = time.perf_counter()
            await read_all(ctx, blob, clients, size)
            busy += time.perf_counter() - start
            after_rounds.append(await settle(pid))
    after = after_rounds[-1]
    return {"clients": clients, "mib": mib, "rounds": rounds, "before_mb": before,
            "peak_mb": peak.peak, "after_mb": after, "after_rounds_mb": after_rounds,
            "peak_per_conn_mb": (peak.peak - before) / clients,
            "after_per_conn_mb": (after - before) / clients,
            "mib_s": rounds * clients * mib / busy}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest tls-rss",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--env", action="append", default=[], metavar="K=V",
                    help="an environment variable for the server (repeatable)")
    args = ap.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="bench-tls-rss-") as tmp:
        cert, key = make_cert(Path(tmp))
        ctx = ssl.create_default_context(cafile=str(cert))
        reg = launch(Path(tmp), scheme="https", verify=str(cert), env=env, config=(
            f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
            '[storage]\nfsync = false\n'))
        try:
            start = time.perf_counter()
            res = asyncio.run(measure(reg.url, reg.process.pid, ctx, args.clients,
                                      args.mib, args.rounds))
            res["seconds"] = round(time.perf_counter() - start, 1)
            res["env"] = env
        finally:
            reg.stop()
    print(json.dumps(res))
    print(f"{args.clients} TLS clients x {args.mib} MiB, {args.rounds} rounds: RSS "
          f"{res['before_mb']:.0f} MB before, {res['peak_mb']:.0f} MB peak, "
          f"{res['after_mb']:.0f} MB after; per connection {res['peak_per_conn_mb']:.2f} MB "
          f"at peak, {res['after_per_conn_mb']:.2f} MB after; {res['mib_s']:.0f} MiB/s")
    return 0
