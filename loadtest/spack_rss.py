"""Memory of one registry worker serving a seeded Spack build cache.

    python -m loadtest spack-rss --specs 20000 [--data DIR] [--cache bench/cache]

Seeds SPECS specs (loadtest/spack_seed.py) into DIR unless it holds them
already, starts `registry serve --data DIR` (one worker, the filesystem
store), and samples the worker's resident set (VmRSS, and its peak VmHWM)
after start-up, after reading every index view (the OCI `index.spack` and its
database, the v3 index manifest and its database, the v2 `index.json`, the
spec list of the API) and after `registry spack list` (a separate process:
its own peak is reported too). Touches only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from loadtest import procs, spack_seed

ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of process `pid`, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def get(url: str, accept: str = "") -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=1800) as r:
        return r.read()


def read_views(base: str, cache: str) -> int:
    """Read every index view of `cache` once; the bytes read."""
    n = 0
    manifest = json.loads(get(f"{base}/v2/{cache}/manifests/index.spack", ACCEPT))
    n += len(get(f"{base}/v2/{cache}/blobs/{manifest['layers'][-1]['digest']}"))
    v3 = json.loads(get(f"{base}/spack/{cache}/v3/manifests/index/index.manifest.json"))
    n += len(get(f"{base}/spack/{cache}/blobs/sha256/"
                 f"{v3['data'][0]['checksum'][:2]}/{v3['data'][0]['checksum']}"))
    n += len(get(f"{base}/spack/{cache}/build_cache/index.json"))
    n += len(get(f"{base}/api/v1/spack/{cache}/specs"))
    return n


def measure(data: Path, cache: str, env: dict[str, str] | None = None) -> dict:
    """Start a worker on `data`, read every view; RSS (KiB) at each step."""
    from harness import free_port, wait_ready  # tests/harness.py

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (data / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "registry", "serve", "--data", str(data),
                             "--listen", f"127.0.0.1:{port}"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    out: dict = {}
    try:
        wait_ready(base, proc)
        get(f"{base}/v2/")
        out["startup"] = rss_kb(proc.pid)
        start = time.perf_counter()
        out["bytes_read"] = read_views(base, cache)
        out["first_read_s"] = round(time.perf_counter() - start, 2)
        out["after_index_reads"] = rss_kb(proc.pid)
        read_views(base, cache)
        out["after_second_reads"] = rss_kb(proc.pid)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run([sys.executable, "-m", "registry", "spack", "list", "--data", str(data),
                        "--cache", cache], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env)
        out["spack_list_process_peak"] = max(
            before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        out["after_spack_list"] = rss_kb(proc.pid)
    finally:
        procs.stop(proc, log)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest spack-rss",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--specs", type=int, default=20000)
    p.add_argument("--data", help="data directory (default: a temporary one)")
    p.add_argument("--cache", default="bench/cache")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data or tmp)
        if not (data / "storage" / "spack").exists():
            took = asyncio.run(spack_seed.seed(data, args.cache, args.specs))
            print(f"seeded {args.specs} specs in {took:.1f} s", file=sys.stderr)
        print(json.dumps({"specs": args.specs, **measure(data, args.cache)}, indent=1))
    return 0
