"""How soon a pushed spec is in the index a client reads, in a cache of N specs,
and how fast the spec queries answer there.

    python -m loadtest spack-latency --specs 200000 [--data DIR] [--pushes 20]

Seeds N spec records into DIR (`spack-seed --records-only`) unless it holds
a cache already, starts `registry serve --data DIR` (one worker, the
filesystem store, plain HTTP on 127.0.0.1) and reads every index view once
(the worker's first load and rendering, timed). Then, PUSHES times, it pushes
one new spec over OCI (blobs, then the manifest under the spec's tag, as
spack does) and polls, side by side, the OCI `index.spack` manifest and the
layout v3 index manifest until each names a database the server serves (HEAD
200): the time from the push's start. Each database is then fetched, untimed,
and must hold the spec. Last, once the spec index has every row, it times
`GET /api/v1/spack/<cache>/specs?name=` and `registry spack list --name`
(the command's own work in this process, and a whole process). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from loadtest import spack_seed
from loadtest.spackgen import make_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import free_port, wait_ready

from loadtest.spack_bench import CACHE, OCI_MANIFEST, push_spec

POLL_S = 0.02


def cpu_s(pid: int) -> float:
    """User and system CPU seconds process `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(xs: list[float]) -> dict[str, float]:
    """Median, p99 (the largest below 100 samples) and maximum, in seconds."""
    xs = sorted(xs)
    return {"median": round(statistics.median(xs), 4),
            "p99": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))], 4),
            "max": round(xs[-1], 4), "n": len(xs)}


async def _oci_db(s: aiohttp.ClientSession, base: str) -> str:
    async with s.get(f"{base}/v2/{CACHE}/manifests/index.spack",
                     headers={"Accept": OCI_MANIFEST}) as r:
        return (await r.json(content_type=None))["layers"][-1]["digest"] if r.status == 200 \
            else ""


async def _v3_db(s: aiohttp.ClientSession, base: str) -> str:
    async with s.get(f"{base}/spack/{CACHE}/v3/manifests/index/index.manifest.json") as r:
        return "sha256:" + (await r.json(content_type=None))["data"][0]["checksum"] \
            if r.status == 200 else ""


def _blob_url(base: str, view: str, digest: str) -> str:
    hexd = digest.split(":", 1)[1]
    return (f"{base}/v2/{CACHE}/blobs/{digest}" if view == "oci"
            else f"{base}/spack/{CACHE}/blobs/sha256/{hexd[:2]}/{hexd}")


VIEWS = {"oci": _oci_db, "v3": _v3_db}


async def _until_new(s: aiohttp.ClientSession, base: str, view: str, old: str,
                     start: float) -> tuple[float, str]:
    """Poll `view` until it names a database other than `old` that is served."""
    while True:
        digest = await VIEWS[view](s, base)
        if digest and digest != old:
            async with s.head(_blob_url(base, view, digest)) as r:
                if r.status == 200:
                    return time.perf_counter() - start, digest
        await asyncio.sleep(POLL_S)


async def _holds(s: aiohttp.ClientSession, base: str, view: str, digest: str, h: str) -> bool:
    async with s.get(_blob_url(base, view, digest)) as r:
        data = await r.read()
    return f'"{h}":'.encode() in data


async def latencies(base: str, pushes: int, pid: int) -> dict:
    out: dict = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as s:
        start = time.perf_counter()
        current = {v: await VIEWS[v](s, base) for v in VIEWS}
        out["first_index_read_s"] = round(time.perf_counter() - start, 2)
        took: dict[str, list[float]] = {v: [] for v in VIEWS}
        run = time.time_ns() // 1000
        push_s: list[float] = []
        cpu: list[float] = []
        for i in range(pushes):
            # New on every run: a spec the cache holds already changes no index.
            spec = make_spec(f"latency{i}", f"1.{run}", fmt=5)
            start, used = time.perf_counter(), cpu_s(pid)
            await push_spec(s, base, spec)
            push_s.append(time.perf_counter() - start)
            got = await asyncio.gather(*(_until_new(s, base, v, current[v], start)
                                         for v in VIEWS))
            cpu.append(cpu_s(pid) - used)
            for view, (seconds, digest) in zip(VIEWS, got, strict=True):
                took[view].append(seconds)
                current[view] = digest
                assert await _holds(s, base, view, digest, spec.hash), (view, spec.hash)
        out["push_s"] = summary(push_s)
        # The worker's CPU from the push to both views: what the wall time is on a
        # quiet machine, whatever else runs beside it.
        out["push_to_index_worker_cpu_s"] = summary(cpu)
        out["push_to_index_s"] = {v: summary(xs) for v, xs in took.items()}
    return out


async def queries(base: str, specs: int, n: int = 20) -> dict:
    async with aiohttp.ClientSession() as s:
        while True:  # the spec index is written behind the load: wait for every row
            async with s.get(f"{base}/api/v1/spack/") as r:
                caches = {c["name"]: c["specs"] for c in (await r.json())["caches"]}
            if caches.get(CACHE, 0) >= specs:
                break
            await asyncio.sleep(1)
        took = []
        for i in range(n):
            name = f"pkg{(i * 7919) % (specs - spack_seed.BASE)}"
            start = time.perf_counter()
            async with s.get(f"{base}/api/v1/spack/{CACHE}/specs", params={"name": name}) as r:
                body = await r.json()
            took.append(time.perf_counter() - start)
            assert r.status == 200 and [x["name"] for x in body["specs"]] == [name], body
    return {"api_specs_by_name_s": summary(took)}


def cli_list(data: Path, specs: int, n: int = 10) -> dict:
    """`registry spack list --name` in this process (the command's work) and as a process."""
    from registry import cli

    inproc = []
    for i in range(-1, n):  # the first: imports and the rows' first replay, not counted
        name = f"pkg{(abs(i) * 104729) % (specs - spack_seed.BASE)}"
        argv = ["spack", "list", "--data", str(data), "--name", name]
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as got, \
                contextlib.redirect_stderr(io.StringIO()):
            cli.main(argv)
        if i >= 0:
            inproc.append(time.perf_counter() - start)
        assert name in got.getvalue(), got.getvalue()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "registry", "spack", "list", "--data", str(data),
                    "--name", "pkg7"], check=True, capture_output=True)
    return {"cli_list_by_name_s": summary(inproc),
            "cli_list_by_name_process_s": round(time.perf_counter() - start, 3)}


def run(data: Path, specs: int, pushes: int) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out: dict = {"specs": specs}
    with (data / "serve.log").open("wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "registry", "serve", "--data",
                                 str(data), "--listen", f"127.0.0.1:{port}"], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_ready(base, proc, timeout=120)
            out.update(asyncio.run(latencies(base, pushes, proc.pid)))
            out["start_to_first_index_s"] = round(time.perf_counter() - start, 2)
            out.update(asyncio.run(queries(base, specs)))
            out.update(cli_list(data, specs))
        finally:
            proc.terminate()
            proc.wait(120)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest spack-latency",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--specs", type=int, default=200000)
    p.add_argument("--pushes", type=int, default=20)
    p.add_argument("--data", help="data directory (default: a temporary one)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data or tmp)
        if not (data / "storage" / "spack").exists():
            took = asyncio.run(spack_seed.seed_records(data, CACHE, args.specs))
            print(f"seeded {args.specs} spec records in {took:.1f} s", file=sys.stderr)
        print(json.dumps(run(data, args.specs, args.pushes), indent=1))
    return 0
