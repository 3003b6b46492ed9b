"""One compose request's memory and latency over a seeded Spack build cache.

    python -m loadtest spack-compose --data DIR [--specs 200000] [--rounds 3]
        [--code old=/path/to/checkout --code new=/path/to/other]

Seeds SPECS records into DIR as one snapshot unless it holds them already
(loadtest/spack_seed.py `seed_records`; the tarballs of pkg0 and the two libraries
it links are kept beside DIR, in DIR.tarballs), then for each checkout (run with
PYTHONPATH set to it: an A/B of two versions on the same data in one run) starts
`registry serve --data DIR` (one worker, the filesystem store), loads the cache
(one spec list read), uploads the three tarballs into the cache's repository and
asks `POST /api/v1/spack/<cache>/images` for `pkg0` ROUNDS times: each request's
wall time, the worker's resident set before it and its peak during it (VmHWM,
reset through /proc/PID/clear_refs before each), and the digest (the same from
every checkout). Touches only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from loadtest import procs
from loadtest.spack_rss import rss_kb
from loadtest.spack_seed import seed_records
from loadtest.spackgen import FakeSpec

CACHE = "bench/cache"


def post(url: str, data: bytes, content_type: str,
         timeout: float = 3600) -> tuple[int, bytes]:
    """POST `data`; the status and body, also of an HTTP error."""
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def seeded(data: Path, specs: int) -> Path:
    """DIR seeded with `specs` records (once), and where pkg0's closure's tarballs are."""
    tarballs = data.with_name(data.name + ".tarballs")
    if tarballs.exists():
        return tarballs
    made: dict[str, FakeSpec] = {}
    took = asyncio.run(seed_records(data, CACHE, specs, on_spec=lambda s: made.setdefault(
        s.name, s) if s.name.startswith("lib") or s.name == "pkg0" else None))
    print(f"seeded {specs} records in {took:.0f} s", file=sys.stderr)
    tarballs.mkdir()
    pkg = made["pkg0"]
    for spec in [*pkg.deps, pkg]:
        (tarballs / spec.tarball_digest).write_bytes(spec.tarball)
    (tarballs / "pkg0.json").write_text(json.dumps({"version": pkg.version}))
    return tarballs


def measure(data: Path, tarballs: Path, code: str | None, rounds: int) -> dict:
    """Start a worker running the checkout `code` (None: this one) on `data`; compose."""
    from harness import free_port, wait_ready  # tests/harness.py

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    if code is not None:
        env["PYTHONPATH"] = code
    log = data.with_name(data.name + ".serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "registry", "serve", "--data", str(data),
                             "--listen", f"127.0.0.1:{port}"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    out: dict = {"code": code or "this checkout", "requests": []}
    try:
        wait_ready(base, proc)
        start = time.perf_counter()
        with urllib.request.urlopen(f"{base}/api/v1/spack/{CACHE}/specs?name=pkg0",
                                    timeout=3600) as r:
            r.read()
        out["load_s"] = round(time.perf_counter() - start, 1)
        out["after_load"] = rss_kb(proc.pid)
        for f in tarballs.glob("sha256:*"):
            status, body = post(f"{base}/v2/{CACHE}/blobs/uploads/?digest={f.name}",
                                 f.read_bytes(), "application/octet-stream")
            assert status == 201, body
        version = json.loads((tarballs / "pkg0.json").read_text())["version"]
        request = json.dumps({"specs": [f"pkg0@{version}"]}).encode()
        for _ in range(rounds):
            before = rss_kb(proc.pid)["VmRSS"]
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            start = time.perf_counter()
            status, body = post(f"{base}/api/v1/spack/{CACHE}/images", request,
                                 "application/json")
            took = time.perf_counter() - start
            assert status == 201, body
            after = rss_kb(proc.pid)
            out["requests"].append({"ms": round(took * 1000), "rss_before_kb": before,
                                    "peak_kb": after["VmHWM"], "rss_after_kb": after["VmRSS"],
                                    "digest": json.loads(body)["digest"]})
    finally:
        procs.stop(proc, log)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest spack-compose",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="data directory (seeded if new)")
    p.add_argument("--specs", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--code", action="append", default=[], metavar="LABEL=PATH",
                   help="a checkout to run the server from (repeat for an A/B)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    data = Path(args.data)
    tarballs = seeded(data, args.specs)
    codes = [tuple(c.split("=", 1)) for c in args.code] or [("this", None)]
    results = {label: measure(data, tarballs, code, args.rounds) for label, code in codes}
    print(json.dumps({"specs": args.specs, **results}, indent=1))
    return 0
