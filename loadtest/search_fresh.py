"""How soon a push is searchable: `GET /api/v1/search` on a real server, from the
moment the manifest PUT returns until the search answers with it.

    python -m loadtest search-fresh [--pushes 30] [--data DIR]

Starts `registry serve --data DIR` (the embedded default: one worker, the filesystem
store, the SQLite index; plain HTTP on 127.0.0.1), then PUSHES times pushes a small
image whose title annotation is a fresh word, and polls `/api/v1/search?q=WORD` every
5 ms until the image is in the answer. Prints the median, p99 and maximum as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import free_port, wait_ready

from loadtest.data import descriptor
from loadtest.spack_bench import OCI_CONFIG, OCI_MANIFEST, push_blob
from loadtest.spack_latency import summary

POLL_S = 0.005


async def _one(session: aiohttp.ClientSession, url: str, i: int) -> float:
    word = "w" + uuid.uuid4().hex[:12]
    repo = f"fresh/app{i % 10}"
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = f"layer {word}".encode()
    for data in (config, layer):
        await push_blob(session, url, data, repo)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
        "annotations": {"org.opencontainers.image.title": word}}).encode()
    async with session.put(f"{url}/v2/{repo}/manifests/{word}", data=manifest,
                           headers={"Content-Type": OCI_MANIFEST}) as r:
        if r.status != 201:
            raise RuntimeError(f"manifest push: {r.status} {await r.text()}")
    pushed = time.perf_counter()
    while time.perf_counter() - pushed < 30:
        async with session.get(f"{url}/api/v1/search", params={"q": word}) as r:
            if r.status == 200 and (await r.json())["results"]:
                return time.perf_counter() - pushed
        await asyncio.sleep(POLL_S)
    raise RuntimeError(f"{word} not searchable after 30 s")


async def measure(url: str, pushes: int) -> list[float]:
    async with aiohttp.ClientSession() as session:
        return [await _one(session, url, i) for i in range(pushes)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest search-fresh",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--pushes", type=int, default=30)
    p.add_argument("--data", help="where the registry keeps its data (default: a new "
                                  "temporary directory)")
    args = p.parse_args(argv)
    data = Path(args.data or tempfile.mkdtemp(prefix="search-fresh-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (data / "registry.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "registry", "serve", "--data",
                                 str(data / "data"), "--listen", f"127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, proc)
        seconds = asyncio.run(measure(url, args.pushes))
    finally:
        proc.terminate()
        proc.wait(30)
    print(json.dumps({"pushes": args.pushes, "push_to_searchable_s": summary(seconds)},
                     indent=1))
    return 0
