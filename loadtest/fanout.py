"""Fan-out: many clients pull one image at once through node caches.

    python -m loadtest fanout [--clients 64] [--caches 4] [--image-size 1GiB]
                              [--layers 4] [--repeat 1] [--out DIR]

Starts on 127.0.0.1, each as its own process: an origin (our registry) holding
a synthetic image of LAYERS random layers, then, one scenario after another:

- `cache`: one node cache (ours, cold) in front of the origin; CLIENTS pull
  every layer of the image from it at once.
- `peers`: CACHES node caches (ours, cold) peered; the clients are spread over
  them.
- `distribution`: Debian's docker-registry in proxy mode (CNCF distribution's
  pull-through cache, cold) in front of the same origin, the same clients.
- `nginx`: nginx serving the layers as static files (the ceiling for
  aggregate throughput here), the same clients.
- `warm`: the cache of `cache` again, now holding the image.

For each it reports the origin's egress divided by the image's size (bytes the
origin process wrote to its sockets, from /proc/<pid>/io: sendfile counts),
per-client pull time (p50, p95, max), aggregate throughput, and the peak RSS
of each cache process. The clients are asyncio HTTP clients in this process
(bodies read and discarded). Writes results.json and fanout.png to --out
(default loadtest/results/fanout-<time>/). Touches only 127.0.0.1, stops what
it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from loadtest.procs import Proc, nginx, peak_rss_mb, wait_ready
from loadtest.targets import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import RunningRegistry, launch

RESULTS = Path(__file__).resolve().parent / "results"
REPO = "fanout/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CHUNK = 1 << 20

DOCKER_PROXY = """\
version: 0.1
log: {{level: error, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {data}}}
  cache: {{blobdescriptor: inmemory}}
http:
  addr: 127.0.0.1:{port}
proxy:
  remoteurl: {origin}
"""

def parse_size(text: str) -> int:
    units = {"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "K": 1 << 10, "M": 1 << 20,
             "G": 1 << 30, "B": 1}
    t = text.strip().upper()
    for unit, scale in sorted(units.items(), key=lambda u: -len(u[0])):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * scale)
    return int(t)


def wchar(pid: int) -> int:
    """Bytes the process (and its threads) wrote with write/send/sendfile."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


# -- the image ----------------------------------------------------------------------


def make_layers(tmp: Path, size: int, layers: int) -> list[tuple[Path, str, int]]:
    """LAYERS files of random bytes totalling SIZE, written in chunks (bounded memory)."""
    out = []
    each = size // layers
    for i in range(layers):
        path = tmp / f"layer{i}"
        h = hashlib.sha256()
        with path.open("wb") as f:
            left = each
            while left:
                chunk = os.urandom(min(CHUNK * 8, left))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        out.append((path, f"sha256:{h.hexdigest()}", each))
    return out


async def push(url: str, layers: list[tuple[Path, str, int]]) -> bytes:
    """Push the image as tag v1; its manifest's bytes."""
    async with aiohttp.ClientSession() as s:
        descs = []
        for path, digest, size in layers:
            async with s.post(f"{url}/v2/{REPO}/blobs/uploads/") as r:
                loc = r.headers["Location"]
            loc = loc if loc.startswith("http") else url + loc
            sep = "&" if "?" in loc else "?"

            async def body(p: Path = path):
                with p.open("rb") as f:
                    while chunk := f.read(CHUNK * 4):
                        yield chunk

            async with s.put(f"{loc}{sep}digest={digest}", data=body(),
                             headers={"Content-Length": str(size),
                                      "Content-Type": "application/octet-stream"}) as r:
                assert r.status == 201, await r.text()
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                          "digest": digest, "size": size})
        config = b'{"architecture":"amd64","os":"linux"}'
        cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
        async with s.post(f"{url}/v2/{REPO}/blobs/uploads/?digest={cdigest}", data=config) as r:
            assert r.status == 201
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": cdigest, "size": len(config)}, "layers": descs}
        body = json.dumps(manifest).encode()
        async with s.put(f"{url}/v2/{REPO}/manifests/v1", data=body,
                         headers={"Content-Type": OCI_MANIFEST}) as r:
            assert r.status == 201, await r.text()
        return body


# -- the clients --------------------------------------------------------------------


async def client(s: aiohttp.ClientSession, url: str, paths: list[str]) -> tuple[float, int]:
    """Pull the image as a runtime does: its manifest, then every layer in turn;
    (seconds, layer bytes)."""
    start = time.perf_counter()
    got = 0
    async with s.get(f"{url}/v2/{REPO}/manifests/v1",
                     headers={"Accept": OCI_MANIFEST}) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {url} manifest: {r.status}")
    for path in paths:
        async with s.get(url + path) as r:
            if r.status != 200:
                raise RuntimeError(f"GET {url}{path}: {r.status}")
            async for chunk in r.content.iter_chunked(CHUNK):
                got += len(chunk)
    return time.perf_counter() - start, got


async def pull_all(urls: list[str], paths: list[str], image_bytes: int) -> dict:
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=3600, sock_read=600)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout,
                                     auto_decompress=False) as s:
        start = time.perf_counter()
        results = await asyncio.gather(*(client(s, u, paths) for u in urls))
        wall = time.perf_counter() - start
    times = sorted(t for t, _ in results)
    assert all(n == image_bytes for _, n in results), "a client got a short image"
    q = statistics.quantiles(times, n=20) if len(times) > 1 else times * 19
    return {"p50_s": statistics.median(times), "p95_s": q[18], "max_s": times[-1],
            "aggregate_gib_s": len(urls) * image_bytes / wall / (1 << 30), "wall_s": wall}


# -- the run ------------------------------------------------------------------------


def cache_config(tmp: Path, origin: str, peers: list[str] | None = None,
                 me: str = "", workers: int = 1) -> str:
    text = (f"[server]\nworkers = {workers}\n"
            f'[cache]\nupstream = "{origin}"\ndir = "{tmp / "cache"}"\n')
    if peers:
        text += "peers = [" + ", ".join(f'"{p}"' for p in peers) + f']\nadvertise = "{me}"\n'
    return text


async def scenario(name: str, origin: RunningRegistry, urls: list[str], paths: list[str],
                   image_bytes: int, watch: dict[str, int]) -> dict:
    before = wchar(origin.process.pid)
    res = await pull_all(urls, paths, image_bytes)
    res["origin_egress_x"] = (wchar(origin.process.pid) - before) / image_bytes
    res["rss_mb"] = {label: peak_rss_mb(pid) for label, pid in watch.items()}
    print(f"{name:>12}: origin egress {res['origin_egress_x']:.2f}x image, p50 "
          f"{res['p50_s']:.1f} s, p95 {res['p95_s']:.1f} s, max {res['max_s']:.1f} s, "
          f"{res['aggregate_gib_s']:.2f} GiB/s, peak RSS "
          + ", ".join(f"{k} {v:.0f} MB" for k, v in res["rss_mb"].items()), flush=True)
    return res


async def run(args: argparse.Namespace, tmp: Path) -> dict:
    image_bytes = parse_size(args.image_size) // args.layers * args.layers
    layers = make_layers(tmp, image_bytes, args.layers)
    paths = [f"/v2/{REPO}/blobs/{d}" for _, d, _ in layers]
    origin = launch(tmp / "origin")
    started: list[RunningRegistry] = []
    procs: list[Proc] = []
    out: dict = {"clients": args.clients, "caches": args.caches, "layers": args.layers,
                 "image_bytes": image_bytes, "cache_workers": args.cache_workers,
                 "scenarios": {}}
    only = set(args.only or ["cache", "peers", "distribution", "nginx", "warm"])
    if "warm" in only:
        only.add("cache")
    try:
        manifest = await push(origin.url, layers)
        # One cold node cache.
        cache = None
        if "cache" in only:
            cache = launch(tmp / "cache", config=cache_config(tmp / "cache", origin.url,
                                                              workers=args.cache_workers),
                           data=False)
            started.append(cache)
            out["scenarios"]["cache"] = await scenario(
                "cache", origin, [cache.url] * args.clients, paths, image_bytes,
                {"cache": cache.process.pid})
            # How long the cache's own downloads took, against the clients' pulls.
            took = [float(t) for t in re.findall(r"fetched \S+ in ([0-9.]+) s", cache.log())]
            out["scenarios"]["cache"]["downloads_s"] = took
            print(f"{'':>14}the cache's downloads took {', '.join(f'{t:.1f}' for t in took)} s",
                  flush=True)
        # Peered cold caches, the clients spread over them.
        if "peers" in only:
            ports = [free_port() for _ in range(args.caches)]
            members = [f"http://127.0.0.1:{p}" for p in ports]
            peers = []
            for i, (port, me) in enumerate(zip(ports, members, strict=True)):
                d = tmp / f"peer{i}"
                peers.append(launch(d, config=cache_config(d, origin.url, members, me),
                                    data=False, port=port))
            started += peers
            out["scenarios"]["peers"] = await scenario(
                "peers", origin, [peers[i % len(peers)].url for i in range(args.clients)],
                paths, image_bytes, {f"peer{i}": p.process.pid for i, p in enumerate(peers)})
        # CNCF distribution's pull-through cache.
        if "distribution" in only and shutil.which(args.theirs_bin):
            port = free_port()
            (tmp / "dr").mkdir()
            (tmp / "dr.yml").write_text(DOCKER_PROXY.format(data=tmp / "dr", port=port,
                                                           origin=origin.url))
            dr = Proc([args.theirs_bin, "serve", str(tmp / "dr.yml")], port, tmp / "dr.log")
            procs.append(dr)
            await wait_ready(dr.url)
            out["scenarios"]["distribution"] = await scenario(
                "distribution", origin, [dr.url] * args.clients, paths, image_bytes,
                {"distribution": dr.pid})
        # nginx: the same files, static.
        if "nginx" in only and shutil.which(args.nginx_bin):
            www = tmp / "www"
            for path, digest, _ in layers:
                dest = www / "v2" / REPO / "blobs" / digest
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, dest)
            (www / "v2" / REPO / "manifests").mkdir(parents=True)
            (www / "v2" / REPO / "manifests" / "v1").write_bytes(manifest)
            ng = nginx(args.nginx_bin, tmp, free_port(), www)
            procs.append(ng)
            await wait_ready(ng.url)
            out["scenarios"]["nginx"] = await scenario(
                "nginx", origin, [ng.url] * args.clients, paths, image_bytes, {})
        # The first cache again, warm.
        if "warm" in only and cache is not None:
            out["scenarios"]["warm"] = await scenario(
                "warm", origin, [cache.url] * args.clients, paths, image_bytes,
                {"cache": cache.process.pid})
    finally:
        for reg in [*started, origin]:
            reg.stop()
        for proc in procs:
            proc.stop()
    sc = out["scenarios"]
    if "nginx" in sc:
        for name in set(sc) & {"cache", "peers", "warm"}:
            sc[name]["vs_nginx"] = sc[name]["aggregate_gib_s"] / sc["nginx"]["aggregate_gib_s"]
    return out


def chart(res: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart"
    sc = res["scenarios"]
    names = list(sc)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(names, [sc[n]["origin_egress_x"] for n in names], color="tab:blue")
    a.set_title("origin egress / image size (lower is better)")
    b.bar(names, [sc[n]["aggregate_gib_s"] for n in names], color="tab:green")
    b.set_title("aggregate throughput, GiB/s")
    fig.suptitle(f"{res['clients']} clients, {res['image_bytes'] / (1 << 30):.2f} GiB image "
                 f"in {res['layers']} layers")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest fanout",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--caches", type=int, default=4, help="peered caches (4)")
    ap.add_argument("--image-size", default="1GiB")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--cache-workers", type=int, default=1,
                    help="[server] workers of the single node cache (1)")
    ap.add_argument("--only", action="append", metavar="SCENARIO",
                    help="run only these scenarios (cache, peers, distribution, nginx, "
                         "warm; warm needs cache)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--tmp-root", type=Path, help="parent of the run's temp dir")
    ap.add_argument("--theirs-bin", default="docker-registry")
    ap.add_argument("--nginx-bin", default="nginx")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= 1024 or not 1 <= args.caches <= 16 \
            or not 1 <= args.layers <= 64:
        raise SystemExit("--clients 1..1024, --caches 1..16, --layers 1..64")
    out_dir = args.out or RESULTS / f"fanout-{dt.datetime.now():%Y%m%d-%H%M%S}"
    with tempfile.TemporaryDirectory(prefix="fanout-", dir=args.tmp_root) as tmp:
        res = asyncio.run(run(args, Path(tmp)))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(res, indent=1))
    note = chart(res, out_dir / "fanout.png")
    if note:
        print(note)
    print(f"results: {out_dir}")
    return 0
