"""Blob push and GET throughput: the S3 driver (on a local SeaweedFS) vs the filesystem driver.

    python loadtest/s3_bench.py [--size-mib 256] [--pushes 3] [--streams 1,4]

Starts SeaweedFS and two registries on 127.0.0.1 (one per driver), then for each:
pushes a blob of SIZE MiB with a monolithic upload (POST + streamed PUT ?digest)
PUSHES times, and reads it back with N concurrent GET streams for each N in
--streams. Prints MiB/s (medians for pushes). Everything runs on this machine,
so the client, the registry and SeaweedFS share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import launch
from seaweed import Seaweed

MiB = 1 << 20


async def push(session: aiohttp.ClientSession, url: str, repo: str, block: bytes,
               blocks: int, digest: str) -> float:
    async def body():
        for _ in range(blocks):
            yield block

    t0 = time.perf_counter()
    async with session.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        assert r.status == 202, await r.text()
        loc = r.headers["Location"]
    async with session.put(f"{url}{loc}", params={"digest": digest}, data=body(),
                           headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 201, await r.text()
    return time.perf_counter() - t0


async def get_streams(session: aiohttp.ClientSession, url: str, repo: str, digest: str,
                      streams: int) -> tuple[float, int]:
    async def one() -> int:
        n = 0
        async with session.get(f"{url}/v2/{repo}/blobs/{digest}") as r:
            assert r.status == 200
            async for chunk in r.content.iter_chunked(1 << 20):
                n += len(chunk)
        return n

    t0 = time.perf_counter()
    total = sum(await asyncio.gather(*[one() for _ in range(streams)]))
    return time.perf_counter() - t0, total


async def bench(name: str, url: str, size_mib: int, pushes: int, streams: list[int]) -> dict:
    block = os.urandom(MiB)
    blocks = size_mib
    h = hashlib.sha256()
    for _ in range(blocks):
        h.update(block)
    digest = "sha256:" + h.hexdigest()
    out: dict = {"driver": name}
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        times = []
        for i in range(pushes):
            # A fresh repository and a fresh blob each time: nothing is deduplicated.
            salt = os.urandom(16)
            first = salt + block[16:]
            hh = hashlib.sha256(first)
            for _ in range(blocks - 1):
                hh.update(block)
            d = "sha256:" + hh.hexdigest()

            async def body_push(first=first, d=d, i=i) -> float:
                async def gen():
                    yield first
                    for _ in range(blocks - 1):
                        yield block

                t0 = time.perf_counter()
                async with session.post(f"{url}/v2/bench/p{i}/blobs/uploads/") as r:
                    loc = r.headers["Location"]
                async with session.put(f"{url}{loc}", params={"digest": d}, data=gen(),
                                       headers={"Content-Type": "application/octet-stream"}
                                       ) as r:
                    assert r.status == 201, await r.text()
                return time.perf_counter() - t0

            times.append(await body_push())
        out["push_mib_s"] = size_mib / statistics.median(times)
        await push(session, url, "bench/get", block, blocks, digest)
        for n in streams:
            secs, total = await get_streams(session, url, "bench/get", digest, n)
            assert total == n * size_mib * MiB
            out[f"get_{n}_mib_s"] = total / MiB / secs
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--pushes", type=int, default=3)
    ap.add_argument("--streams", default="1,4")
    args = ap.parse_args()
    streams = [int(s) for s in args.streams.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        root = Path(tmp)
        sw = Seaweed(root / "seaweed")
        sw.start()
        regs = []
        try:
            fs = launch(root / "fs")
            regs.append(fs)
            s3 = launch(root / "s3", env=sw.registry_env("bench"))
            regs.append(s3)
            results = [asyncio.run(bench("filesystem", fs.url, args.size_mib, args.pushes,
                                         streams)),
                       asyncio.run(bench("s3 (SeaweedFS)", s3.url, args.size_mib,
                                         args.pushes, streams))]
        finally:
            for reg in regs:
                reg.stop()
            sw.stop()
    cols = ["push_mib_s"] + [f"get_{n}_mib_s" for n in streams]
    print(f"blob of {args.size_mib} MiB, {args.pushes} pushes (median), "
          f"GET with {args.streams} concurrent streams; MiB/s")
    print(f"{'driver':<16}" + "".join(f"{c:>16}" for c in cols))
    for r in results:
        print(f"{r['driver']:<16}" + "".join(f"{r[c]:>16.0f}" for c in cols))
    print(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(), "cores")


if __name__ == "__main__":
    main()
