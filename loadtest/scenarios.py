"""The scenarios, the seeding they need, and the sizes for full and --quick runs.

Every scenario runs against one freshly started and seeded server and returns
`{"metrics": [...], "details": {...}}`; the first metric is the headline figure and is
always higher-is-better. It raises `Unsupported` when the server lacks the API (e.g.
referrers on docker-registry 2.8) and any other exception when the run is invalid.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadtest import client, wrk
from loadtest.client import RegistryClient, RegistryError
from loadtest.data import (
    EMPTY_JSON,
    MANIFEST_ACCEPT,
    OCI_MANIFEST,
    BlobFile,
    artifact_manifest,
    image_config,
    image_manifest,
    sha256_digest,
    small_blobs,
)
from loadtest.targets import Server

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Profile:
    name: str = "full"
    duration: float = 10.0  # seconds per wrk / headload run
    connections: int = 64
    big_blob: int = GiB
    streams: dict = field(default_factory=lambda: {"1": 1, "16": 16, "64": 64})
    range_slice: int = 4 * MiB
    push_blob: int = GiB
    push_chunk: int = 16 * MiB
    small_count: int = 1000
    small_size: int = 4096
    small_clients: int = 16
    tags: int = 10_000
    tags_page: int = 100
    tags_seed_clients: int = 16
    referrers: int = 500
    curl_max_time: float = 900.0
    # big-repo-*: one repository with big_tags tags, each on its own small manifest
    big_tags: int = 50_000
    big_page: int = 100
    big_seed_clients: int = 32
    big_deletes: int = 10  # deletes by digest, each of a different manifest
    big_delete_limit_s: float = 120.0  # stop deleting after this (at least one delete)
    # big-repo-sync: replica B's index catch-up, on the S3 driver (SeaweedFS)
    sync_new_tags: int = 20  # K tags pushed to replica A per round
    sync_rounds: int = 2
    sync_interval: int = 1  # replica B's [index] sync_interval, seconds
    sync_timeout_s: float = 900.0  # per wait (seeding excluded)


FULL = Profile()
QUICK = Profile(
    name="quick",
    duration=1.0,
    connections=4,
    big_blob=16 * MiB,
    streams={"1": 1, "16": 2, "64": 4},
    range_slice=1 * MiB,
    push_blob=16 * MiB,
    push_chunk=4 * MiB,
    small_count=50,
    small_clients=4,
    tags=250,
    tags_page=100,
    tags_seed_clients=8,
    referrers=20,
    curl_max_time=120.0,
    big_tags=2_000,
    big_seed_clients=16,
    big_deletes=5,
    big_delete_limit_s=30.0,
    sync_new_tags=10,
    sync_rounds=2,
    sync_timeout_s=120.0,
)


class Unsupported(Exception):
    """The server does not implement what the scenario measures."""


@dataclass
class Options:
    profile: Profile
    work_dir: Path  # wrk scripts live here for the whole bench
    wrk_bin: str = "wrk"
    curl_bin: str = "curl"
    wrk_threads: int = 1
    head_tool: str = "auto"  # auto | wrk | headload


@dataclass
class Files:
    """Cached blob files (generated once, digests precomputed)."""

    big: BlobFile | None = None
    push_mono: BlobFile | None = None
    push_chunked: BlobFile | None = None


REPO_APP = "loadtest/app"
REPO_TAGS = "loadtest/tags"
REPO_REFS = "loadtest/refs"
REPO_BIG = "loadtest/big"
TAG = "latest"


@dataclass
class Seed:
    manifest: bytes = b""
    manifest_digest: str = ""
    tags: int = 0
    subject_digest: str = ""
    referrers: int = 0
    big_digests: list[str] = field(default_factory=list)  # manifest of big_tag(i)
    seconds: dict = field(default_factory=dict)


@dataclass
class Ctx:
    server: Server
    opts: Options
    files: Files
    seed: Seed
    rep: int
    shared: dict  # survives across runs (e.g. the HEAD tool decision)


def metric(
    key: str, label: str, value: float, unit: str, better: str = "higher", chart: bool = True
) -> dict:
    """One measured figure; `chart=False` keeps a derived figure out of the PNG."""
    return {
        "key": key,
        "label": label,
        "value": value,
        "unit": unit,
        "better": better,
        "chart": chart,
    }


# -- seeding ------------------------------------------------------------------------


def _app_blobs() -> tuple[bytes, list[bytes]]:
    rnd = random.Random(7)
    layers = [rnd.randbytes(n) for n in (2048, 3072, 4096)]
    return image_config(layers), layers


def _app_manifest() -> tuple[bytes, bytes, list[bytes]]:
    config, layers = _app_blobs()
    return image_manifest(config, layers), config, layers


def seed_static(server: Server, needs: set[str], files: Files) -> None:
    """nginx, before it starts: the files a registry would serve, at the same URL paths
    (the manifest by tag and by digest, with its digest header; the big blob)."""
    if "app" in needs:
        manifest, _, _ = _app_manifest()
        digest = sha256_digest(manifest)
        for ref in (TAG, digest):
            server.add_static(f"/v2/{REPO_APP}/manifests/{ref}", manifest, digest)
    if "big" in needs and files.big is not None:
        server.link_blob(REPO_APP, files.big)


def big_tag(i: int) -> str:
    """The big repository's tags sort as their numbers do: t000000, t000001, ..."""
    return f"t{i:06d}"


def _big_blobs() -> tuple[bytes, bytes]:
    layer = random.Random(11).randbytes(1024)
    return image_config([layer]), layer


def big_manifest(i: int, label: str = "big") -> bytes:
    """A distinct small manifest per i (an annotation varies), all on the same 2 blobs."""
    config, layer = _big_blobs()
    return image_manifest(config, [layer], {"org.example.loadtest.big": f"{label}-{i}"})


async def seed_big_repo(c: RegistryClient, repo: str, count: int, clients: int) -> list[str]:
    """One config and one layer blob, then `count` distinct manifests, each PUT by its
    tag big_tag(i) from `clients` concurrent connections. Returns their digests."""
    config, layer = _big_blobs()
    for blob in (config, layer):
        await c.ensure_blob(repo, blob, sha256_digest(blob))
    bodies = [big_manifest(i) for i in range(count)]
    digests = [sha256_digest(b) for b in bodies]

    async def put(i: int) -> None:
        got = await c.put_manifest(repo, big_tag(i), bodies[i])
        if got and got != digests[i]:
            raise RegistryError(f"manifest digest {got} != {digests[i]}")

    await client.bounded_map(put, range(count), clients)
    return digests


async def seed(server: Server, needs: set[str], opts: Options, files: Files) -> Seed:
    """Put what the scenarios in `needs` read onto a fresh server (same for every target).
    nginx got its files from seed_static() before it started."""
    s = Seed()
    if server.kind == "nginx":
        if "app" in needs:
            s.manifest = _app_manifest()[0]
            s.manifest_digest = sha256_digest(s.manifest)
        return s
    p = opts.profile
    async with RegistryClient(server.url, concurrency=max(16, p.tags_seed_clients),
                              auth=server.basic_auth) as c:
        if needs & {"app", "big"}:
            t0 = time.perf_counter()
            s.manifest, config, layers = _app_manifest()
            for blob in (config, *layers):
                await c.ensure_blob(REPO_APP, blob, sha256_digest(blob))
            s.manifest_digest = sha256_digest(s.manifest)
            got = await c.put_manifest(REPO_APP, TAG, s.manifest)
            if got and got != s.manifest_digest:
                raise RegistryError(f"manifest digest {got} != {s.manifest_digest}")
            s.seconds["app"] = time.perf_counter() - t0
        if "big" in needs and files.big is not None:
            t0 = time.perf_counter()
            await asyncio.to_thread(client.push_file_monolithic, server.url, REPO_APP, files.big)
            size = await c.blob_size(REPO_APP, files.big.digest)
            if size != files.big.size:
                raise RegistryError(f"seeded big blob has size {size}, not {files.big.size}")
            s.seconds["big"] = time.perf_counter() - t0
        if "tags" in needs:
            t0 = time.perf_counter()
            config, layers = _app_blobs()
            for blob in (config, *layers):
                await c.ensure_blob(REPO_TAGS, blob, sha256_digest(blob))
            body = image_manifest(config, layers, {"org.example.loadtest": "tags"})
            await c.put_manifest(REPO_TAGS, "t00000", body)

            async def put_tag(i: int) -> None:
                await c.put_manifest(REPO_TAGS, f"t{i:05d}", body)

            await client.bounded_map(put_tag, range(1, p.tags), p.tags_seed_clients)
            s.tags = p.tags
            s.seconds["tags"] = time.perf_counter() - t0
        if "refs" in needs:
            t0 = time.perf_counter()
            config, layers = _app_blobs()
            for blob in (config, *layers, EMPTY_JSON):
                await c.ensure_blob(REPO_REFS, blob, sha256_digest(blob))
            subject = image_manifest(config, layers, {"org.example.loadtest": "subject"})
            await c.put_manifest(REPO_REFS, "subject", subject)
            s.subject_digest = sha256_digest(subject)

            async def put_ref(i: int) -> None:
                body = artifact_manifest(subject, i)
                await c.put_manifest(REPO_REFS, sha256_digest(body), body)

            await client.bounded_map(put_ref, range(p.referrers), p.tags_seed_clients)
            s.referrers = p.referrers
            s.seconds["refs"] = time.perf_counter() - t0
    if "bigrepo" in needs:
        async with RegistryClient(server.url, concurrency=p.big_seed_clients,
                                  auth=server.basic_auth) as c:
            t0 = time.perf_counter()
            s.big_digests = await seed_big_repo(c, REPO_BIG, p.big_tags, p.big_seed_clients)
            s.seconds["bigrepo"] = time.perf_counter() - t0
    return s


# -- scenarios -----------------------------------------------------------------------


def _wrk_details(summary: dict) -> dict:
    keep = ("requests", "seconds", "rps", "bytes", "errors", "latency_us", "tool")
    return {k: summary[k] for k in keep if k in summary} | {
        "connections": summary.get("connections"),
        "threads": summary.get("threads"),
    }


async def _wrk_load(ctx: Ctx, url: str, script: str, *, connections: int | None = None,
                    threads: int | None = None, args: list[str] | None = None) -> dict:
    """wrk with lua/<script>.lua against `url` for the run's duration, checked for
    errors; connections and threads default to the profile's."""
    p = ctx.opts.profile
    summary = await wrk.run(
        url,
        wrk.script(script, ctx.opts.work_dir),
        connections=connections or p.connections,
        duration=p.duration,
        threads=threads or ctx.opts.wrk_threads,
        args=args,
        wrk_bin=ctx.opts.wrk_bin,
    )
    wrk.check(summary)
    return summary


async def _check_manifest_get(ctx: Ctx, path: str, headers: dict[str, str]) -> None:
    async with RegistryClient(ctx.server.url, 1) as c:
        status, got, body = await c.request("GET", path, headers=headers)
    if status != 200 or body != ctx.seed.manifest:
        raise RegistryError(f"GET manifest by tag: {status} {body[:200]!r}")
    ctype = got.get("Content-Type", "").split(";")[0].strip()
    digest = got.get("Docker-Content-Digest", ctx.seed.manifest_digest)
    if ctype != OCI_MANIFEST or digest != ctx.seed.manifest_digest:
        raise RegistryError(f"GET manifest by tag: Content-Type {ctype!r}, digest {digest!r}")


async def manifest_get(ctx: Ctx) -> dict:
    path = f"/v2/{REPO_APP}/manifests/{TAG}"
    await _check_manifest_get(ctx, path, {"Accept": MANIFEST_ACCEPT})
    summary = await _wrk_load(ctx, ctx.server.url + path, "manifest_get")
    return {
        "metrics": [metric("rps", "req/s", summary["rps"], "req/s")],
        "details": _wrk_details(summary),
    }


async def manifest_get_bearer(ctx: Ctx) -> dict:
    """manifest-get with a Bearer token from /token (our registry with --auth): what
    token auth costs a pull, next to manifest-get's anonymous pulls on the same server."""
    auth = ctx.server.basic_auth
    if auth is None:
        raise Unsupported("needs our registry with token auth (--auth)")
    async with RegistryClient(ctx.server.url, 1, auth=auth) as c:
        status, _, body = await c.request(
            "GET", f"/token?service=registry&scope=repository:{REPO_APP}:pull")
    if status != 200:
        raise RegistryError(f"GET /token: {status} {body[:200]!r}")
    token = json.loads(body)["token"]
    path = f"/v2/{REPO_APP}/manifests/{TAG}"
    await _check_manifest_get(ctx, path, {"Accept": MANIFEST_ACCEPT,
                                          "Authorization": f"Bearer {token}"})
    summary = await _wrk_load(ctx, ctx.server.url + path, "manifest_get", args=[token])
    return {
        "metrics": [metric("rps", "req/s", summary["rps"], "req/s")],
        "details": _wrk_details(summary),
    }


async def _head_tool(ctx: Ctx, url: str) -> str:
    """wrk if it can complete HEAD requests (Debian's 4.1 cannot), else headload."""
    if ctx.opts.head_tool != "auto":
        return ctx.opts.head_tool
    if "head_tool" not in ctx.shared:
        try:
            probe = await wrk.run(
                url,
                wrk.script("manifest_head", ctx.opts.work_dir),
                connections=1,
                duration=1,
                threads=1,
                wrk_bin=ctx.opts.wrk_bin,
                timeout_s=2,
            )
            ok = probe["requests"] > 0 and not probe["errors"]["timeout"]
        except wrk.WrkError:
            ok = False
        ctx.shared["head_tool"] = "wrk" if ok else "headload"
    return ctx.shared["head_tool"]


async def manifest_head(ctx: Ctx) -> dict:
    p = ctx.opts.profile
    path = f"/v2/{REPO_APP}/manifests/{ctx.seed.manifest_digest}"
    async with RegistryClient(ctx.server.url, 1) as c:
        status, headers, _ = await c.request("HEAD", path, headers={"Accept": MANIFEST_ACCEPT})
    if status != 200 or int(headers.get("Content-Length", -1)) != len(ctx.seed.manifest):
        raise RegistryError(f"HEAD manifest by digest: {status} {headers}")
    url = ctx.server.url + path
    tool = await _head_tool(ctx, url)
    if tool == "wrk":
        summary = await _wrk_load(ctx, url, "manifest_head")
    else:
        summary = await wrk.run_headload(
            url, connections=p.connections, duration=p.duration, headers={"Accept": MANIFEST_ACCEPT}
        )
        wrk.check(summary)
    return {
        "metrics": [metric("rps", "req/s", summary["rps"], "req/s")],
        "note": f"load tool {summary['tool']}",
        "details": _wrk_details(summary),
    }


class RssSampler:
    """Peak RSS of a server's whole process tree, sampled every `interval` seconds."""

    def __init__(self, server: Server, interval: float = 0.05):
        self.server = server
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._task: asyncio.Task | None = None

    def sample(self) -> int:
        rss = self.server.rss()
        self.peak = max(self.peak, rss)
        self.samples += 1
        return rss

    async def _loop(self) -> None:
        while True:  # cancelled by stop()
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.sample()


async def _curl_all(argv: list[str], n: int, limit_s: float) -> list[tuple[int, str, str]]:
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(n):
            procs.append(
                await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
            )
        outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), limit_s)
        return [
            (p.returncode or 0, o.decode(errors="replace"), e.decode(errors="replace"))
            for p, (o, e) in zip(procs, outs, strict=True)
        ]
    finally:
        for p in procs:  # after an error or Ctrl-C: never leave a curl behind
            if p.returncode is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
                await asyncio.shield(p.wait())


def blob_get(key: str) -> Callable[[Ctx], Awaitable[dict]]:
    async def run(ctx: Ctx) -> dict:
        p = ctx.opts.profile
        streams = int(p.streams[key])
        blob = ctx.files.big
        assert blob is not None
        url = f"{ctx.server.url}/v2/{REPO_APP}/blobs/{blob.digest}"
        async with RegistryClient(ctx.server.url, 1) as c:
            size = await c.blob_size(REPO_APP, blob.digest)
        if size != blob.size:
            raise RegistryError(f"HEAD blob: size {size}, expected {blob.size}")
        argv = [ctx.opts.curl_bin, "-sS", "--fail", "-L", "-o", "/dev/null"]
        argv += ["--max-time", f"{p.curl_max_time:g}", "-w", "%{http_code} %{size_download}", url]
        sampler = RssSampler(ctx.server)
        idle = sampler.sample()
        sampler.start()
        # A round of downloads that takes a fraction of a second is at the mercy of
        # one scheduling hiccup: short rounds are repeated for about the run's
        # duration (at most 10 rounds) and the median round is reported.
        rounds: list[float] = []
        try:
            while not rounds or (sum(rounds) < p.duration and len(rounds) < 10):
                t0 = time.perf_counter()
                results = await _curl_all(argv, streams, p.curl_max_time + 30)
                rounds.append(time.perf_counter() - t0)
                for code, out, err in results:
                    if code != 0 or out.split() != ["200", str(blob.size)]:
                        raise RegistryError(f"curl exit {code}, got {out!r}: {err.strip()}")
        finally:
            await sampler.stop()
        seconds = statistics.median(rounds)
        total = blob.size * streams
        return {
            "metrics": [
                metric("gbps", "GB/s", total / seconds / 1e9, "GB/s"),
                metric("rss", "peak RSS MiB", sampler.peak / MiB, "MiB", "lower"),
            ],
            "details": {
                "streams": streams,
                "blob_bytes": blob.size,
                "seconds": seconds,
                "rounds_s": rounds,
                "idle_rss_mib": idle / MiB,
                "rss_samples": sampler.samples,
            },
        }

    return run


async def blob_range(ctx: Ctx) -> dict:
    p = ctx.opts.profile
    blob = ctx.files.big
    assert blob is not None
    path = f"/v2/{REPO_APP}/blobs/{blob.digest}"
    start = blob.size // 3
    async with RegistryClient(ctx.server.url, 1) as c:
        rng = f"bytes={start}-{start + p.range_slice - 1}"
        status, _, body = await c.request("GET", path, headers={"Range": rng})
    if status != 206 or len(body) != p.range_slice:
        raise RegistryError(f"GET blob with Range: {status}, {len(body)} bytes")
    with blob.path.open("rb") as f:
        f.seek(start)
        if f.read(p.range_slice) != body:
            raise RegistryError("GET blob with Range: wrong bytes")
    summary = await _wrk_load(ctx, ctx.server.url + path, "range",
                              args=[str(blob.size), str(p.range_slice), "42"])
    payload = summary["requests"] * p.range_slice
    if summary["bytes"] < payload:
        raise RegistryError(f"wrk read {summary['bytes']} bytes for {payload} of slices")
    return {
        "metrics": [
            metric("gbps", "GB/s", payload / summary["seconds"] / 1e9, "GB/s"),
            metric("rps", "req/s", summary["rps"], "req/s", chart=False),
        ],
        "details": _wrk_details(summary) | {"slice_bytes": p.range_slice},
    }


def push_big(chunked: bool) -> Callable[[Ctx], Awaitable[dict]]:
    async def run(ctx: Ctx) -> dict:
        p = ctx.opts.profile
        blob = ctx.files.push_chunked if chunked else ctx.files.push_mono
        assert blob is not None
        repo = "loadtest/push-chunked" if chunked else "loadtest/push-mono"
        if chunked:
            timing = await asyncio.to_thread(
                client.push_file_chunked, ctx.server.url, repo, blob, p.push_chunk
            )
        else:
            timing = await asyncio.to_thread(
                client.push_file_monolithic, ctx.server.url, repo, blob
            )
        async with RegistryClient(ctx.server.url, 1) as c:
            size = await c.blob_size(repo, blob.digest)
        if size != blob.size:
            raise RegistryError(f"pushed blob reads back with size {size}, not {blob.size}")
        return {
            "metrics": [metric("gbps", "GB/s", blob.size / timing["seconds"] / 1e9, "GB/s")],
            "details": timing
            | {"blob_bytes": blob.size, "chunk_bytes": p.push_chunk if chunked else None},
        }

    return run


async def push_small(ctx: Ctx) -> dict:
    p = ctx.opts.profile
    repo = "loadtest/small"
    blobs = small_blobs(p.small_count + 1, p.small_size, seed=1000 + ctx.rep)
    probe, blobs = blobs[0], blobs[1:]
    async with RegistryClient(ctx.server.url, p.small_clients) as c:
        single_post = await c.probe_single_post(repo, *probe)

        async def push(item: tuple[bytes, str]) -> None:
            await c.push_blob(repo, item[0], item[1], single_post)

        t0 = time.perf_counter()
        await client.bounded_map(push, blobs, p.small_clients)
        seconds = time.perf_counter() - t0
        for data, digest in random.Random(3).sample(blobs, min(10, len(blobs))):
            if await c.blob_size(repo, digest) != len(data):
                raise RegistryError(f"pushed blob {digest} is missing")
    return {
        "metrics": [metric("blobs_per_s", "blobs/s", len(blobs) / seconds, "blobs/s")],
        "note": "1 POST per blob" if single_post else "POST + PUT per blob",
        "details": {
            "blobs": len(blobs),
            "blob_bytes": p.small_size,
            "clients": p.small_clients,
            "seconds": seconds,
            "mode": "POST ?digest= (201)" if single_post else "POST + PUT ?digest=",
        },
    }


async def _wrk_listings(ctx: Ctx, first_page: str, expected: int | None = None) -> dict:
    """Full listings from `first_page` on, one after another on one connection, for
    the run's duration: wrk's Lua follows each Link rel=next and checks that every
    listing has every tag (lua/tags_list.lua). A C client, because a Python one
    costs about as much per request as the server answering it, and a paginated
    listing is 100 requests where an unpaginated one is 1."""
    expected = ctx.seed.tags if expected is None else expected
    summary = await _wrk_load(ctx, ctx.server.url, "tags_list", connections=1, threads=1,
                              args=[first_page, str(expected)])
    listings = summary.get("listings", 0)
    if summary.get("bad_listings") or summary.get("bad_status") or listings <= 0:
        raise RegistryError(f"tag listings failed: {summary}")
    per_s = listings / summary["seconds"]
    return {
        "metrics": [
            metric("listings_per_s", "full listings/s", per_s, "listings/s"),
            metric("ms", "ms per full listing", 1e3 / per_s, "ms", "lower", chart=False),
        ],
        "pages": summary["pages"] / listings,
        "details": _wrk_details(summary) | {
            "tags": expected, "listings": listings, "pages": summary["pages"],
        },
    }


async def tags_list(ctx: Ctx) -> dict:
    p = ctx.opts.profile
    max_pages = ctx.seed.tags // max(1, p.tags_page) + 10
    async with RegistryClient(ctx.server.url, 1) as c:
        tags, _ = await c.list_tags(REPO_TAGS, p.tags_page, max_pages)
        if len(tags) != ctx.seed.tags or len(set(tags)) != ctx.seed.tags:
            raise RegistryError(f"listing has {len(tags)} tags ({len(set(tags))} distinct)")
    out = await _wrk_listings(ctx, f"/v2/{REPO_TAGS}/tags/list?n={p.tags_page}")
    out["note"] = f"{out.pop('pages'):g} page(s) per listing"
    out["details"]["page_size"] = p.tags_page
    return out


async def tags_list_all(ctx: Ctx) -> dict:
    """The same tags in one request without `n`: what each server does to list them,
    free of the per-page round trips (docker-registry 2.8 ignores `n` and always
    answers this way, so its paginated listing is this one request too)."""
    out = await _wrk_listings(ctx, f"/v2/{REPO_TAGS}/tags/list")
    out.pop("pages")
    out["note"] = "one request, no n"
    return out


async def referrers(ctx: Ctx) -> dict:
    p = ctx.opts.profile
    digest = ctx.seed.subject_digest
    path = f"/v2/{REPO_REFS}/referrers/{digest}"
    async with RegistryClient(ctx.server.url, 1) as c:
        status, manifests, pages = await c.list_referrers(REPO_REFS, digest, max_pages=1000)
        if status != 200:
            raise Unsupported(f"GET {path}: HTTP {status}")
        if len(manifests) != ctx.seed.referrers:
            raise RegistryError(f"{len(manifests)} referrers listed, {ctx.seed.referrers} pushed")
        if pages > 1:  # paginated: wrk would only read page 1, so time full listings
            times = []
            deadline = time.monotonic() + p.duration
            for _ in range(100_000):  # bounded in count and time
                t0 = time.perf_counter()
                await c.list_referrers(REPO_REFS, digest, max_pages=1000)
                times.append(time.perf_counter() - t0)
                if time.monotonic() > deadline:
                    break
            rate = len(times) / sum(times)
            details: dict = {"tool": "client", "listings": len(times)}
    if pages == 1:
        summary = await _wrk_load(ctx, ctx.server.url + path, "referrers")
        rate = summary["rps"]
        details = _wrk_details(summary)
    return {
        "metrics": [metric("listings_per_s", "full listings/s", rate, "listings/s")],
        "note": f"{pages} page(s) per listing",
        "details": details | {"referrers": len(manifests), "pages": pages},
    }


async def big_repo_list(ctx: Ctx) -> dict:
    """(a) The full tag listing of the big repository: GET tags/list without `n`,
    following Link rel=next if the server paginates anyway."""
    n = len(ctx.seed.big_digests)
    async with RegistryClient(ctx.server.url, 1, timeout=300) as c:
        tags, _ = await c.list_tags(REPO_BIG, 0, max_pages=n + 10, paginate=False)
    if len(tags) != n or len(set(tags)) != n:
        raise RegistryError(f"listing has {len(tags)} tags ({len(set(tags))} distinct), not {n}")
    out = await _wrk_listings(ctx, f"/v2/{REPO_BIG}/tags/list", n)
    out["note"] = f"{out.pop('pages'):g} page(s) per listing of {n:,} tags"
    seeding = ctx.seed.seconds.get("bigrepo")
    if seeding:  # a by-product: the tagged manifest PUTs of the seeding, concurrent
        out["details"]["seed_manifest_puts_per_s"] = n / seeding
    return out


async def big_repo_page(ctx: Ctx) -> dict:
    """(b) One page from the middle: `?n=100&last=<tag n/2>`, one request at a time on one
    connection; the median latency is the figure that matters."""
    p = ctx.opts.profile
    n = len(ctx.seed.big_digests)
    mid = n // 2
    path = f"/v2/{REPO_BIG}/tags/list?n={p.big_page}&last={big_tag(mid)}"
    async with RegistryClient(ctx.server.url, 1, timeout=300) as c:
        status, _, body = await c.request("GET", path)
    if status != 200:
        raise RegistryError(f"GET {path}: {status} {body[:200]!r}")
    tags = client._json(body).get("tags") or []
    if len(tags) > p.big_page:
        raise Unsupported(f"ignores n and last: {len(tags):,} tags in one answer")
    want = [big_tag(i) for i in range(mid + 1, min(n, mid + 1 + p.big_page))]
    if tags != want:
        raise RegistryError(f"page after {big_tag(mid)}: {tags[:3]}... not {want[:3]}...")
    summary = await _wrk_load(ctx, ctx.server.url + path, "get", connections=1, threads=1)
    p50_ms = summary["latency_us"]["p50"] / 1e3
    return {
        "metrics": [
            metric("pages_per_s", "pages/s (1 connection)", summary["rps"], "pages/s"),
            metric("p50_ms", "median ms per page", p50_ms, "ms", "lower", chart=False),
        ],
        "details": _wrk_details(summary) | {"tags": n, "page": p.big_page, "last": big_tag(mid)},
    }


async def big_repo_delete(ctx: Ctx) -> dict:
    """(c) DELETE /v2/<repo>/manifests/<digest> of different manifests, one at a time:
    deleting a manifest also removes the tags that point at it, which costs a look at
    every tag of the repository."""
    p = ctx.opts.profile
    digests = ctx.seed.big_digests
    n = len(digests)
    count = max(1, min(p.big_deletes, n // 4))
    # spread over the tag range, off the middle page that big-repo-page reads
    chosen = [((2 * k + 1) * n // (2 * count) + 7) % n for k in range(count)]
    times: list[float] = []
    async with RegistryClient(ctx.server.url, 1, timeout=300) as c:
        t_all = time.perf_counter()
        for i in chosen:  # bounded: count deletes and big_delete_limit_s
            t0 = time.perf_counter()
            status, _, body = await c.request("DELETE", f"/v2/{REPO_BIG}/manifests/{digests[i]}")
            times.append(time.perf_counter() - t0)
            if status != 202:
                raise RegistryError(f"DELETE manifest {digests[i]}: {status} {body[:200]!r}")
            if time.perf_counter() - t_all > p.big_delete_limit_s:
                break
        done = chosen[: len(times)]
        untagged = 0
        for i in done:
            status, _, _ = await c.request("HEAD", f"/v2/{REPO_BIG}/manifests/{digests[i]}")
            if status != 404:
                raise RegistryError(f"manifest {digests[i]} still there after DELETE ({status})")
            status, _, _ = await c.request("HEAD", f"/v2/{REPO_BIG}/manifests/{big_tag(i)}")
            untagged += status == 404
    median = statistics.median(times)
    return {
        "metrics": [
            metric("deletes_per_s", "deletes/s (1/median)", 1 / median, "deletes/s"),
            metric("ms", "median ms per delete", median * 1e3, "ms", "lower", chart=False),
        ],
        "note": f"{untagged} of {len(done)} deleted manifests' tags gone",
        "details": {
            "tags": n,
            "deletes": len(times),
            "seconds": times,
            "median_s": median,
            "tags_removed": untagged,
        },
    }


async def big_repo_sync(ctx: Ctx) -> dict:
    """(d) Index catch-up between two replicas on S3: see loadtest/replicas.py (imported
    here, when it runs: it starts SeaweedFS with tests/seaweed.py)."""
    from loadtest import replicas

    return await replicas.big_repo_sync(ctx)


# -- the catalogue ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kinds: frozenset  # "registry" and/or "nginx"
    needs: frozenset  # seed parts: app, big, tags, refs, bigrepo; files: big, push_mono, ...
    run: Callable[[Ctx], Awaitable[dict]]
    default: bool = True  # run without --scenario (the big-repo ones are long: ask for them)

    def describe(self) -> dict:
        d = asdict(self)
        d.pop("run")
        d["kinds"] = sorted(self.kinds)
        d["needs"] = sorted(self.needs)
        return d


REG = frozenset({"registry"})
REG_NGINX = frozenset({"registry", "nginx"})

SCENARIOS: list[Scenario] = [
    Scenario("manifest-get", "manifest GET by tag (wrk)", REG_NGINX, frozenset({"app"}),
             manifest_get),
    Scenario("manifest-get-bearer", "manifest GET by tag with a Bearer token (--auth)", REG,
             frozenset({"app"}), manifest_get_bearer, default=False),
    Scenario("manifest-head", "manifest HEAD by digest", REG_NGINX, frozenset({"app"}),
             manifest_head),
    Scenario(
        "blob-get-1", "blob GET, 1 stream (curl)", REG_NGINX, frozenset({"big"}), blob_get("1")
    ),
    Scenario(
        "blob-get-16", "blob GET, 16 streams (curl)", REG_NGINX, frozenset({"big"}), blob_get("16")
    ),
    Scenario(
        "blob-get-64", "blob GET, 64 streams (curl)", REG_NGINX, frozenset({"big"}), blob_get("64")
    ),
    Scenario("blob-range", "blob GET with Range (wrk)", REG_NGINX, frozenset({"big"}), blob_range),
    Scenario(
        "push-mono", "push 1 blob, monolithic PUT", REG, frozenset({"push_mono"}), push_big(False)
    ),
    Scenario(
        "push-chunked",
        "push 1 blob, chunked PATCHes",
        REG,
        frozenset({"push_chunked"}),
        push_big(True),
    ),
    Scenario("push-small", "push many 4 KiB blobs", REG, frozenset(), push_small),
    Scenario("tags-list", "tags list, paginated", REG, frozenset({"tags"}), tags_list),
    Scenario("tags-list-all", "tags list, one request", REG, frozenset({"tags"}),
             tags_list_all),
    Scenario("referrers", "referrers of a manifest", REG, frozenset({"refs"}), referrers),
    Scenario("big-repo-list", "big repository: full tag listing", REG, frozenset({"bigrepo"}),
             big_repo_list, default=False),
    Scenario("big-repo-page", "big repository: one page from the middle", REG,
             frozenset({"bigrepo"}), big_repo_page, default=False),
    Scenario("big-repo-delete", "big repository: delete a manifest by digest", REG,
             frozenset({"bigrepo"}), big_repo_delete, default=False),
    Scenario("big-repo-sync", "big repository: replica index catch-up (S3)", REG, frozenset(),
             big_repo_sync, default=False),
]
BY_NAME = {s.name: s for s in SCENARIOS}


# Names that select several scenarios.
GROUPS = {"big-repo": [s.name for s in SCENARIOS if s.name.startswith("big-repo-")]}


def select(names: list[str] | None) -> list[Scenario]:
    """Scenarios by name or group (in catalogue order); `None` or [] means the default
    ones (all but big-repo-*), ["all"] every one."""
    if not names:
        return [s for s in SCENARIOS if s.default]
    if "all" in names:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in BY_NAME and n not in GROUPS]
    if unknown:
        raise KeyError(f"unknown scenario(s): {', '.join(unknown)}")
    wanted = {m for n in names for m in GROUPS.get(n, [n])}
    return [s for s in SCENARIOS if s.name in wanted]
