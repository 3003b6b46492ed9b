"""Spack build cache at scale: the server-kept index against spack's own
update-index on the reference registry, and classic reads against nginx.

    python -m loadtest spack [--specs 10000] [--repeat 3] [--out DIR]

Starts, on 127.0.0.1 and all over TLS (spack talks https): our registry,
Debian's docker-registry, and nginx serving the same cache as static files.
Pushes SPECS specs over OCI to both registries as spack's push does (tarball,
config carrying the spec, manifest under the spec's tag), then measures,
alternating targets, REPEAT times each (medians):

- push-to-index: a new spec pushed until a client reading `index.spack` sees
  it. Ours keeps the index: the push and one index read. docker-registry
  needs the client's update-index, done as spack 1.x does it (list every tag,
  GET every manifest and config, push a new index); the same client-side
  update-index is timed against ours too.
- index fetch: the `index.spack` manifest and its database blob, from each
  registry and from nginx (the same bytes as a static file).
- classic reads, from our `/spack/<cache>/` view and from nginx serving the
  same bytes at the same paths: the v3 index manifest, the index database and
  a 64 MiB tarball (wrk, 16 connections, SECONDS each), and a random mix of
  spec manifests and tarballs as installs read them (32 aiohttp clients; nginx
  serves the directory `spack buildcache push file://` wrote for the specs).
- small documents (wrk, 16 connections): a spec manifest, and with `--sign`
  (a throwaway gpg key as our `[spack] signing_key`) a `.spec.json.sig`, from
  ours and from nginx serving ours' bytes at the same path.

nginx runs as many worker processes as ours (`--nginx-workers` to change).
`--classic-only` skips docker-registry, push-to-index and the index fetches:
only the classic reads and small documents, for profiling the hot path.

Writes results.json in --out (default loadtest/results/spack-<time>/) and
prints a table. Touches only 127.0.0.1; stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from loadtest import procs, sysinfo, wrk
from loadtest.report import write_results
from loadtest.spackdir import v2_names, write_v3
from loadtest.spackgen import FakeSpec, make_spec
from loadtest.targets import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import launch
from tlsutil import make_cert

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CACHE = "bench/cache"
RESULTS = Path(__file__).resolve().parent / "results"

DOCKER_REGISTRY = """\
version: 0.1
log: {{level: error, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {data}}}
  delete: {{enabled: true}}
  cache: {{blobdescriptor: inmemory}}
http:
  addr: 127.0.0.1:{port}
  tls: {{certificate: {cert}, key: {key}}}
"""

# -- spack's side -----------------------------------------------------------------


async def push_blob(s: aiohttp.ClientSession, url: str, data: bytes,
                    repo: str = CACHE) -> str:
    """Upload `data` into `repo` (POST then PUT) unless it is there already; its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with s.head(f"{url}/v2/{repo}/blobs/{digest}") as r:
        if r.status == 200:
            return digest
    async with s.post(f"{url}/v2/{repo}/blobs/uploads/") as r:
        assert r.status == 202, await r.text()
        loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else url + loc
    sep = "&" if "?" in loc else "?"
    async with s.put(f"{loc}{sep}digest={digest}", data=data,
                     headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 201, await r.text()
    return digest


async def push_manifest(s: aiohttp.ClientSession, url: str, tag: str, config: bytes,
                        layers: list[tuple[str, int]]) -> None:
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": await push_blob(s, url, config),
                           "size": len(config)},
                "layers": [{"mediaType": LAYER, "digest": d, "size": n} for d, n in layers]}
    async with s.put(f"{url}/v2/{CACHE}/manifests/{tag}", data=json.dumps(manifest).encode(),
                     headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201, await r.text()


async def push_spec(s: aiohttp.ClientSession, url: str, spec: FakeSpec) -> None:
    """As spack's OCI push: the tarball, the config with the spec, the manifest."""
    layer = await push_blob(s, url, spec.tarball)
    await push_manifest(s, url, spec.tag, spec.oci_config(), [(layer, len(spec.tarball))])


async def bounded(n: int, coros) -> list:
    sem = asyncio.Semaphore(n)

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def get_json(s: aiohttp.ClientSession, url: str, accept: str = "") -> tuple[dict, bytes]:
    async with s.get(url, headers={"Accept": accept} if accept else {}) as r:
        assert r.status == 200, (url, r.status)
        body = await r.read()
    return json.loads(body), body


async def update_index(s: aiohttp.ClientSession, url: str, jobs: int = 16) -> int:
    """spack 1.x's OCI update-index: every tag, every manifest and config, one
    new index.spack. The number of specs it indexed."""
    tags: list[str] = []
    path = f"/v2/{CACHE}/tags/list?n=1000"
    while path:
        async with s.get(url + path) as r:
            tags += (await r.json())["tags"] or []
            link = r.headers.get("Link", "")
        path = link[1:link.index(">")] if link else ""

    async def spec_of(tag: str) -> dict:
        manifest, _ = await get_json(s, f"{url}/v2/{CACHE}/manifests/{tag}", OCI_MANIFEST)
        config, _ = await get_json(s, f"{url}/v2/{CACHE}/blobs/{manifest['config']['digest']}")
        return config["spec"]["nodes"][0]

    nodes = await bounded(jobs, [spec_of(t) for t in tags
                                      if t.endswith(".spack") and t != "index.spack"])
    db = json.dumps({"database": {"version": "8", "installs": {
        n["hash"]: {"spec": n, "ref_count": 0, "in_buildcache": True} for n in nodes}}}).encode()
    layer = await push_blob(s, url, db)
    await push_manifest(s, url, "index.spack", b"{}", [(layer, len(db))])
    return len(nodes)


async def fetch_index(s: aiohttp.ClientSession, url: str) -> dict:
    manifest, _ = await get_json(s, f"{url}/v2/{CACHE}/manifests/index.spack", OCI_MANIFEST)
    db, _ = await get_json(s, f"{url}/v2/{CACHE}/blobs/{manifest['layers'][-1]['digest']}")
    return db["database"]["installs"]


# -- measurements -----------------------------------------------------------------


async def push_to_index(s: aiohttp.ClientSession, url: str, spec: FakeSpec,
                        client_update: bool) -> float:
    start = time.perf_counter()
    await push_spec(s, url, spec)
    if client_update:
        await update_index(s, url)
    installs = await fetch_index(s, url)
    took = time.perf_counter() - start
    assert spec.hash in installs
    return took


async def classic_reads(ctx: ssl.SSLContext, paths: list[str], seconds: float,
                        clients: int = 32) -> float:
    """Requests per second of `clients` looping over random `paths` (full URLs)."""
    done = 0
    stop = time.perf_counter() + seconds
    rng = random.Random(7)

    async def client(s: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with s.get(rng.choice(paths)) as r:
                await r.read()
                assert r.status == 200, r.status
            done += 1

    conn = aiohttp.TCPConnector(ssl=ctx, limit=clients)
    async with aiohttp.ClientSession(connector=conn) as s:
        start = time.perf_counter()
        await asyncio.gather(*(client(s) for _ in range(clients)))
        return done / (time.perf_counter() - start)


def site_key(home: Path) -> str:
    """A throwaway ed25519 signing key in gpg home `home`; its fingerprint."""
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--no-tty", "--homedir", str(home)]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "Bench <b@bench.example>",
                    "ed25519", "sign", "never"], check=True, capture_output=True, timeout=60)
    listing = subprocess.run([*gpg, "--with-colons", "--list-secret-keys"], check=True,
                             capture_output=True, timeout=60).stdout.decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))


async def read_each(ctx: ssl.SSLContext, urls: list[str], clients: int = 32) -> None:
    """GET every one of `urls` once, `clients` at a time."""
    async def one(s: aiohttp.ClientSession, url: str) -> None:
        async with s.get(url) as r:
            await r.read()
            assert r.status == 200, (url, r.status)

    conn = aiohttp.TCPConnector(ssl=ctx, limit=clients)
    async with aiohttp.ClientSession(connector=conn) as s:
        await bounded(clients, [one(s, url) for url in urls])


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


async def copy_index(s: aiohttp.ClientSession, url: str, www: Path) -> int:
    """Our v2 index.json as it is now, written where nginx serves it; its size."""
    installs = await fetch_index(s, url)
    db = json.dumps({"database": {"version": "8", "installs": installs}}).encode()
    (www / "index.json").write_bytes(db)
    return len(db)


async def run(args: argparse.Namespace, tmp: Path) -> dict:
    cert, key = make_cert(tmp)
    ctx = ssl.create_default_context(cafile=str(cert))
    specs = [make_spec(f"pkg{i % 500}", f"1.{i // 500}", seed=i, tar_size=args.tar_size)
             for i in range(args.specs + args.repeat * 4)]
    base, extra = specs[:args.specs], specs[args.specs:]

    signing = ""
    if args.gnupg is not None:
        signing = f'[spack]\nsigning_key = "{args.fpr}"\ngnupg_home = "{args.gnupg}"\n'
    ours = launch(tmp / "ours", scheme="https", verify=str(cert), config=(
        f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\nworkers = {args.workers}\n'
        f'[storage]\nfsync = {"true" if args.fsync else "false"}\n' + signing))
    rss_phases: dict[str, list[float]] = {}

    def phase(name: str) -> None:
        """Our server's memory after a phase: (RSS now, peak so far), MB."""
        rss_phases[name] = [procs.rss_mb(ours.process.pid),
                            procs.peak_rss_mb(ours.process.pid)]
        print(f"  ours after {name}: RSS {rss_phases[name][0]:.0f} MB, "
              f"peak {rss_phases[name][1]:.0f} MB", flush=True)

    dr_port = free_port()
    (tmp / "dr").mkdir()
    (tmp / "dr.yml").write_text(DOCKER_REGISTRY.format(data=tmp / "dr", port=dr_port,
                                                      cert=cert, key=key))
    theirs = procs.Proc([args.theirs_bin, "serve", str(tmp / "dr.yml")], dr_port,
                        tmp / "docker-registry.log", "https")
    www = tmp / "www"
    write_v3(www / "cache", base)
    nginx_workers = args.nginx_workers or args.workers
    nginx = procs.nginx(args.nginx_bin, tmp, free_port(), www, cert, key, nginx_workers)
    out: dict = {"specs": args.specs, "repeat": args.repeat, "tar_size": args.tar_size,
                 "workers": args.workers, "fsync": args.fsync, "sign": args.sign,
                 "nginx_workers": nginx_workers, "classic_only": args.classic_only,
                 "machine": sysinfo.machine()}
    try:
        await asyncio.gather(procs.wait_ready(theirs.url, ctx),
                             procs.wait_ready(nginx.url, ctx))
        targets = {"ours": ours.url, "docker-registry": theirs.url}
        conn = aiohttp.TCPConnector(ssl=ctx, limit=64)
        timeout = aiohttp.ClientTimeout(total=600)
        if args.classic_only:
            targets = {"ours": ours.url}
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
            for name, url in targets.items():
                start = time.perf_counter()
                await bounded(32, [push_spec(s, url, spec) for spec in base])
                secs = time.perf_counter() - start
                out[f"push_specs_per_s.{name}"] = args.specs / secs
                print(f"{name}: pushed {args.specs} specs in {secs:.1f} s", flush=True)
            phase("pushed")
            rows: dict[str, list[float]] = {}
            if not args.classic_only:
                # docker-registry has no index until a client makes one.
                start = time.perf_counter()
                assert await update_index(s, theirs.url) == args.specs
                out["first_update_index_s.docker-registry"] = time.perf_counter() - start
                phase("docker-registry indexed")

                spare = iter(extra)
                for _ in range(args.repeat):
                    for label, url, client_update in (
                            ("ours (server-kept)", ours.url, False),
                            ("docker-registry + update-index", theirs.url, True),
                            ("ours + update-index", ours.url, True)):
                        took = await push_to_index(s, url, next(spare), client_update)
                        rows.setdefault(f"push_to_index_s.{label}", []).append(took)
                index_url = {"ours": ours.url, "docker-registry": theirs.url}
                await copy_index(s, ours.url, www)  # nginx serves the same bytes
                phase("push-to-index runs (with update-index against ours)")
                for _ in range(args.repeat):
                    for name, url in index_url.items():
                        start = time.perf_counter()
                        await fetch_index(s, url)
                        rows.setdefault(f"index_fetch_s.{name}", []).append(
                            time.perf_counter() - start)
                    start = time.perf_counter()
                    async with s.get(f"{nginx.url}/index.json") as r:
                        json.loads(await r.read())
                    rows.setdefault("index_fetch_s.nginx", []).append(time.perf_counter() - start)

        # Classic reads, ours against nginx serving the very same bytes at the same
        # paths: the v3 index manifest and database, a large tarball (wrk, one
        # thread, 16 connections), and a random mix of spec manifests and small
        # tarballs as installs read them (32 aiohttp clients).
        big = make_spec("bigpkg", "1.0", seed=1, tar_size=args.big_mib << 20)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx),
                                         timeout=timeout) as s:
            out["index_bytes"] = await copy_index(s, ours.url, www)
            await push_spec(s, ours.url, big)
            index_manifest = "v3/manifests/index/index.manifest.json"
            manifest, raw = await get_json(s, f"{ours.url}/spack/{CACHE}/{index_manifest}")
            h = manifest["data"][0]["checksum"]
            index_blob = f"blobs/sha256/{h[:2]}/{h}"
            async with s.get(f"{ours.url}/spack/{CACHE}/{index_blob}") as r:
                db_bytes = await r.read()
            # Small documents: ours' bytes, served by nginx at the same paths.
            one = base[len(base) // 2]
            small = {"spec_manifest": f"v3/manifests/spec/{one.name}/{one.name}-"
                                      f"{one.version}-{one.hash}.spec.manifest.json"}
            if args.sign:
                small["spec_sig"] = f"build_cache/{v2_names(one)[0]}.sig"
            for rel in small.values():
                async with s.get(f"{ours.url}/spack/{CACHE}/{rel}") as r:
                    assert r.status == 200, (rel, r.status)
                    (www / "cache" / rel).parent.mkdir(parents=True, exist_ok=True)
                    (www / "cache" / rel).write_bytes(await r.read())
        (www / "cache" / index_manifest).write_bytes(raw)
        (www / "cache" / index_blob).parent.mkdir(parents=True, exist_ok=True)
        (www / "cache" / index_blob).write_bytes(db_bytes)
        tar_hex = big.tarball_digest.split(":")[1]
        tarball = f"blobs/sha256/{tar_hex[:2]}/{tar_hex}"
        (www / "cache" / tarball).parent.mkdir(parents=True, exist_ok=True)
        (www / "cache" / tarball).write_bytes(big.tarball)
        lua = wrk.script("get", tmp)
        prefixes = {"ours": f"{ours.url}/spack/{CACHE}", "nginx": f"{nginx.url}/cache"}
        for _ in range(args.repeat):
            reads = [("index_manifest", index_manifest, "rps"),
                     *((what, rel, "rps") for what, rel in small.items())]
            if not args.small_only:
                reads += [("index_db", index_blob, "bytes_per_s"),
                          ("tarball", tarball, "bytes_per_s")]
            for what, rel, unit in reads:
                for name, prefix in prefixes.items():
                    res = await wrk.run(f"{prefix}/{rel}", lua, connections=args.connections,
                                        duration=args.seconds, threads=1, timeout_s=30)
                    wrk.check(res)
                    value = res[unit] / (1 << 20) if unit == "bytes_per_s" else res[unit]
                    key = f"classic_{what}_{'mib_s' if unit == 'bytes_per_s' else 'rps'}"
                    rows.setdefault(f"{key}.{name}", []).append(value)

        def paths(prefix: str) -> list[str]:
            out_paths = []
            for spec in base[:2000]:
                hexd = spec.tarball_digest.split(":")[1]
                out_paths.append(f"{prefix}/v3/manifests/spec/{spec.name}/{spec.name}-"
                                 f"{spec.version}-{spec.hash}.spec.manifest.json")
                out_paths.append(f"{prefix}/blobs/sha256/{hexd[:2]}/{hexd}")
            return out_paths

        read_targets = {name: paths(prefix) for name, prefix in prefixes.items()}
        # Warm: ours synthesizes each spec manifest once (and with --sign signs it:
        # a gpg process each) and keeps it; read every path once.
        phase("wrk reads of the index and a tarball")
        await read_each(ctx, read_targets["ours"])
        for _ in range(args.repeat):
            for name, urls in read_targets.items():
                rows.setdefault(f"classic_mix_per_s.{name}", []).append(
                    await classic_reads(ctx, urls, args.seconds))
        for k, v in rows.items():
            out[k] = median(v)
            out[k + ".runs"] = v
        phase("install mix")
        out["rss_mb.ours"] = procs.peak_rss_mb(ours.process.pid)
        out["rss_phases_mb.ours"] = rss_phases
        out["load_average"] = list(os.getloadavg())
    finally:
        ours.stop()
        theirs.stop()
        nginx.stop()
    return out


def table(res: dict) -> str:
    lines = [f"{res['specs']} specs, medians of {res['repeat']} alternating runs, all over TLS; "
             f"ours: workers {res['workers']}, fsync {res['fsync']}",
             f"index database: {res['index_bytes'] / 1e6:.1f} MB"]
    for key in sorted(k for k in res if "." in k and not k.endswith(".runs")
                      and not isinstance(res[k], dict)):
        value = res[key]
        lines.append(f"  {key:<55} {value:12.3f}")
    ours = res.get("push_to_index_s.ours (server-kept)")
    theirs = res.get("push_to_index_s.docker-registry + update-index")
    if ours and theirs:
        lines.append(f"push-to-index: docker-registry + update-index / ours = "
                     f"{theirs / ours:.0f}x")
    ours_idx, theirs_idx = res.get("index_fetch_s.ours"), res.get("index_fetch_s.docker-registry")
    nginx_idx = res.get("index_fetch_s.nginx")
    if ours_idx and theirs_idx and nginx_idx:
        lines.append(f"index fetch: ours {ours_idx * 1000:.0f} ms, docker-registry "
                     f"{theirs_idx * 1000:.0f} ms, nginx {nginx_idx * 1000:.0f} ms")
    for what in ("classic_index_manifest_rps", "classic_spec_manifest_rps",
                 "classic_spec_sig_rps", "classic_index_db_mib_s",
                 "classic_tarball_mib_s", "classic_mix_per_s"):
        ours_r, nginx_r = res.get(f"{what}.ours"), res.get(f"{what}.nginx")
        if ours_r and nginx_r:
            lines.append(f"{what}: ours / nginx = {ours_r / nginx_r:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest spack",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--specs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="per classic-read run")
    ap.add_argument("--tar-size", type=int, default=4096, help="bytes of each tarball's content")
    ap.add_argument("--big-mib", type=int, default=64, help="MiB of the large tarball read")
    ap.add_argument("--workers", type=int, default=1, help="our [server] workers (1)")
    ap.add_argument("--nginx-workers", type=int, help="nginx worker processes (as ours)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    ap.add_argument("--sign", action="store_true",
                    help="ours signs with a throwaway gpg key: adds `.spec.json.sig` reads")
    ap.add_argument("--classic-only", action="store_true",
                    help="skip docker-registry, push-to-index and index fetches")
    ap.add_argument("--small-only", action="store_true",
                    help="classic reads of small documents only (no index db, no tarball)")
    ap.add_argument("--no-fsync", dest="fsync", action="store_false",
                    help="our [storage] fsync = false (docker-registry never fsyncs)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--theirs-bin", default="docker-registry")
    ap.add_argument("--nginx-bin", default="nginx")
    args = ap.parse_args(argv)
    if not 10 <= args.specs <= 200_000 or not 1 <= args.repeat <= 20:
        raise SystemExit("--specs must be in [10, 200000], --repeat in [1, 20]")
    for tool in (args.theirs_bin, args.nginx_bin):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install docker-registry nginx-light)")
    out_dir = args.out or RESULTS / f"spack-{dt.datetime.now():%Y%m%d-%H%M%S}"
    args.gnupg = None
    with tempfile.TemporaryDirectory(prefix="bench-spack-") as tmp, \
            tempfile.TemporaryDirectory(prefix="g", dir="/tmp") as short:
        try:
            if args.sign:  # gpg-agent's socket path must be short: the home is in /tmp
                args.gnupg = Path(short) / "h"
                args.fpr = site_key(args.gnupg)
            res = asyncio.run(run(args, Path(tmp)))
        finally:
            if args.gnupg is not None:
                subprocess.run(["gpgconf", "--homedir", str(args.gnupg), "--kill", "all"],
                               capture_output=True, timeout=30)
    write_results(out_dir, res, table(res))
    return 0
