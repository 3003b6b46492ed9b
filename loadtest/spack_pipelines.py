"""Concurrent Spack pipelines through replicas on one SeaweedFS bucket.

    python -m loadtest spack-pipelines [--pipelines 16] [--specs 1000] [--replicas 2]
                                       [--workers 1] [--read-every 1] [--timeout 120]
                                       [--out DIR]

Starts a SeaweedFS on 127.0.0.1 (as tests/seaweed.py does) and REPLICAS registries
on the S3 driver sharing one prefix of its bucket. PIPELINES pipelines push SPECS
distinct specs each into one build cache at the same time, pipeline i through
replica i % REPLICAS, every other pair the way spack pushes over `oci://` (tarball
and config blobs, the manifest under the spec's tag) or as spack 0.2x pushes to an
`s3://` mirror (the `.spack` tarball, then the `.spec.json`, through the S3
endpoint). The specs are format 4 (spack 0.2x), so every index view holds every
spec: the v2 `build_cache/index.json`, the v3 index manifest's database, the
`index.spack` database of `oci://`, and `GET /api/v1/spack/<cache>/specs`. While
they push, every view of every replica is read every READ_EVERY seconds, as the
installs of a busy site read the index (0: not at all).

After the last push returned, every view of every replica is polled until it
holds every spec whose push succeeded (or TIMEOUT passes: what is missing then is
lost). Reported: specs pushed and per second, failed pushes, lost and unexpected
specs per view, and how long after the last push each view was complete
(median and max over views and replicas). Writes results.json in --out (default
loadtest/results/spack-pipelines-<time>/). Stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from loadtest import sysinfo
from loadtest.report import write_results
from loadtest.spackdir import v2_names
from loadtest.spackgen import FakeSpec, make_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import launch

del sys.path[0]

CACHE = "pipelines"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
RESULTS = Path(__file__).resolve().parent / "results"
POLL_S = 0.1
TRIES = 3  # per request: a push that fails three times counts as failed, not lost


class PushFailed(Exception):
    """A push the registry refused (the spec is then not expected anywhere)."""


def pipeline_specs(pipeline: int, n: int, fmt: int = 4) -> list[FakeSpec]:
    """The `n` distinct specs pipeline `pipeline` pushes."""
    return [make_spec(f"p{pipeline}-pkg{j % 50}", f"1.{j // 50}", fmt=fmt,
                      seed=pipeline * 1_000_003 + j, tar_size=64) for j in range(n)]


# -- pushing -------------------------------------------------------------------------


async def _request(s: aiohttp.ClientSession, method: str, url: str, ok: tuple[int, ...],
                   **kw) -> aiohttp.ClientResponse:
    """One request, tried TRIES times on connection errors and 5xx; the response
    (read) if its status is in `ok`."""
    last = ""
    for attempt in range(TRIES):
        try:
            async with s.request(method, url, **kw) as r:
                await r.read()
                if r.status in ok:
                    return r
                last = f"{method} {url}: {r.status} {(await r.text())[:200]}"
                if r.status < 500:
                    break
        except (TimeoutError, aiohttp.ClientError) as exc:
            last = f"{method} {url}: {exc!r}"
        await asyncio.sleep(0.2 * (attempt + 1))
    raise PushFailed(last)


async def _blob(s: aiohttp.ClientSession, url: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = await _request(s, "HEAD", f"{url}/v2/{CACHE}/blobs/{digest}", (200, 404))
    if r.status == 200:
        return digest
    r = await _request(s, "POST", f"{url}/v2/{CACHE}/blobs/uploads/", (202,))
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else url + loc
    sep = "&" if "?" in loc else "?"
    await _request(s, "PUT", f"{loc}{sep}digest={digest}", (201,), data=data,
                   headers={"Content-Type": "application/octet-stream"})
    return digest


async def push_oci(s: aiohttp.ClientSession, url: str, spec: FakeSpec) -> None:
    """As spack's `oci://` push: the tarball, the config with the spec, the manifest."""
    config = spec.oci_config()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": await _blob(s, url, config),
                           "size": len(config)},
                "layers": [{"mediaType": LAYER, "digest": await _blob(s, url, spec.tarball),
                            "size": len(spec.tarball)}]}
    await _request(s, "PUT", f"{url}/v2/{CACHE}/manifests/{spec.tag}", (201,),
                   data=json.dumps(manifest).encode(), headers={"Content-Type": OCI_MANIFEST})


async def push_s3(s: aiohttp.ClientSession, url: str, spec: FakeSpec) -> None:
    """As spack 0.2x's push to an `s3://` mirror (layout v2): the tarball, then the
    spec file. Unsigned PutObjects: the registry runs with auth off, which takes any
    credentials or none."""
    spec_name, tar_name = v2_names(spec)
    for key, body in ((tar_name, spec.tarball), (spec_name, spec.spec_json_v2())):
        await _request(s, "PUT", f"{url}/s3/{CACHE}/build_cache/{key}", (200,), data=body)


@dataclass
class Pushed:
    """What the pipelines did: the hashes whose push succeeded, and when the last one
    returned (time.monotonic)."""

    hashes: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    last_push: float = 0.0
    seconds: float = 0.0


async def run_pipelines(urls: list[str], pipelines: int, specs: int, fmt: int = 4,
                        progress: bool = False) -> Pushed:
    """`pipelines` pipelines at once, pipeline i through urls[i % len(urls)], pairs of
    pipelines alternating between OCI and S3; each pushes its specs one after another."""
    out = Pushed()
    start = time.monotonic()

    async def pipeline(i: int) -> None:
        url = urls[i % len(urls)]
        push = push_oci if (i // len(urls)) % 2 == 0 else push_s3
        todo = await asyncio.to_thread(pipeline_specs, i, specs, fmt)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            if push is push_s3:  # spack never creates its bucket; any PutObject does
                await _request(s, "PUT", f"{url}/s3/{CACHE}", (200, 409))
            for j, spec in enumerate(todo):
                try:
                    await push(s, url, spec)
                except PushFailed as exc:
                    out.failed.append(f"{spec.hash}: {exc}")
                    continue
                out.hashes.add(spec.hash)
                out.last_push = max(out.last_push, time.monotonic())
                if progress and i == 0 and (j + 1) % 100 == 0:
                    print(f"  pipeline 0: {j + 1} specs, {len(out.hashes)} in all, "
                          f"{time.monotonic() - start:.0f} s", flush=True)

    await asyncio.gather(*(pipeline(i) for i in range(pipelines)))
    out.seconds = time.monotonic() - start
    return out


# -- the index views -----------------------------------------------------------------


class Views:
    """Reads each index view of one replica, fetching a database only when the
    document naming it changed (a poll of an unchanged view costs one small GET)."""

    def __init__(self, s: aiohttp.ClientSession, url: str) -> None:
        self.s = s
        self.url = url
        self._last: dict[str, tuple[str, set[str]]] = {}

    async def _get(self, path: str, accept: str = "") -> bytes | None:
        async with self.s.get(self.url + path,
                              headers={"Accept": accept} if accept else {}) as r:
            body = await r.read()
            return body if r.status == 200 else None

    async def _db(self, view: str, key: str, path: str) -> set[str]:
        kept = self._last.get(view)
        if kept is not None and kept[0] == key:
            return kept[1]
        body = await self._get(path)
        if body is None:
            return set()
        installs = set(json.loads(body)["database"]["installs"])
        self._last[view] = (key, installs)
        return installs

    async def oci(self) -> set[str]:
        body = await self._get(f"/v2/{CACHE}/manifests/index.spack", OCI_MANIFEST)
        if body is None:
            return set()
        digest = json.loads(body)["layers"][-1]["digest"]
        return await self._db("oci", digest, f"/v2/{CACHE}/blobs/{digest}")

    async def v3(self) -> set[str]:
        body = await self._get(f"/spack/{CACHE}/v3/manifests/index/index.manifest.json")
        if body is None:
            return set()
        h = json.loads(body)["data"][0]["checksum"]
        return await self._db("v3", h, f"/spack/{CACHE}/blobs/sha256/{h[:2]}/{h}")

    async def v2(self) -> set[str]:
        h = await self._get(f"/spack/{CACHE}/build_cache/index.json.hash")
        if h is None:
            return set()
        return await self._db("v2", h.decode().strip(), f"/spack/{CACHE}/build_cache/index.json")

    async def api(self) -> set[str]:
        got: set[str] = set()
        path: str | None = f"/api/v1/spack/{CACHE}/specs?n=1000"
        while path:
            body = await self._get(path)
            if body is None:
                return got
            doc = json.loads(body)
            got |= {s["hash"] for s in doc["specs"]}
            path = doc.get("next")
        return got

    def all(self) -> dict[str, Callable[[], Awaitable[set[str]]]]:
        return {"v2 index.json": self.v2, "v3 index": self.v3, "oci index.spack": self.oci,
                "api specs": self.api}


@dataclass
class Converged:
    """One view of one replica: seconds after the last push until it held every
    pushed spec (None: not within the timeout), and what it lacked or had extra
    when polling stopped."""

    replica: int
    view: str
    after_s: float | None
    missing: int
    extra: int
    polls: int


async def poll_views(urls: list[str], pushed: Pushed, limit_s: float = 120.0
                     ) -> list[Converged]:
    """Poll every view of every replica until it holds `pushed.hashes` (or `limit_s`
    passed), all at once."""
    deadline = time.monotonic() + limit_s
    want = pushed.hashes

    async def follow(i: int, view: str, read: Callable[[], Awaitable[set[str]]]
                     ) -> Converged:
        polls = 0
        while True:
            try:
                got = await read()
            except (TimeoutError, aiohttp.ClientError, ValueError, KeyError):
                got = set()
            polls += 1
            now = time.monotonic()
            if want <= got or now > deadline:
                done = want <= got
                return Converged(i, view, now - pushed.last_push if done else None,
                                 len(want - got), len(got - want), polls)
            await asyncio.sleep(POLL_S)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        tasks = [follow(i, view, read) for i, url in enumerate(urls)
                 for view, read in Views(s, url).all().items()]
        return list(await asyncio.gather(*tasks))


async def read_while(urls: list[str], every_s: float, reads: list[int]) -> None:
    """Until cancelled: every `every_s` seconds, read every view of every replica once
    (installs reading the index while pipelines push), counting in reads[0]."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        views = [read for url in urls for read in Views(s, url).all().values()]
        while True:
            for read in views:
                try:
                    await read()
                except (TimeoutError, aiohttp.ClientError, ValueError, KeyError):
                    pass
                reads[0] += 1
            await asyncio.sleep(every_s)


# -- the scenario --------------------------------------------------------------------


def stop(reg) -> None:
    """Stop a replica and its workers: the harness kills the parent after 10 s, and a
    worker still finishing its requests then would outlive it."""
    pid = reg.pid
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    reg.stop()
    for kid in kids:
        try:
            os.kill(int(kid), signal.SIGKILL)
        except ProcessLookupError:
            pass


async def run(args: argparse.Namespace, tmp: Path) -> dict:
    from loadtest.replicas import LocalSeaweed

    weed = LocalSeaweed(tmp / "seaweed")
    replicas = []
    try:
        await asyncio.to_thread(weed.start)
        prefix = f"pipelines-{uuid.uuid4().hex[:8]}"
        env = weed.registry_env("loadtest", prefix)
        env["REGISTRY_SERVER_WORKERS"] = str(args.workers)
        for r in range(args.replicas):
            replicas.append(await asyncio.to_thread(launch, tmp / f"replica{r}", env=env))
        urls = [reg.url for reg in replicas]
        print(f"SeaweedFS and {len(urls)} replicas up; {args.pipelines} pipelines x "
              f"{args.specs} specs", flush=True)
        counted = [0]
        reader = asyncio.create_task(read_while(urls, args.read_every, counted)) \
            if args.read_every > 0 else None
        try:
            pushed = await run_pipelines(urls, args.pipelines, args.specs, progress=True)
        finally:
            if reader is not None:  # at once: polling must not wait for its round
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
        reads = counted[0]
        print(f"pushed {len(pushed.hashes)} specs in {pushed.seconds:.0f} s "
              f"({len(pushed.failed)} failed); polling every view", flush=True)
        views = await poll_views(urls, pushed, args.timeout)
    finally:
        for reg in replicas:
            stop(reg)
        weed.stop()
        if args.out is not None:  # the access logs say what each poll waited for
            args.out.mkdir(parents=True, exist_ok=True)
            for r, reg in enumerate(replicas):
                (args.out / f"replica{r}.log").write_text(reg.log())
    done = [v.after_s for v in views if v.after_s is not None]
    return {
        "pipelines": args.pipelines, "specs_each": args.specs, "replicas": args.replicas,
        "workers": args.workers, "machine": sysinfo.machine(),
        "read_every_s": args.read_every, "reads_while_pushing": reads,
        "pushed": len(pushed.hashes), "failed": len(pushed.failed),
        "failures": pushed.failed[:20], "push_s": pushed.seconds,
        "specs_per_s": len(pushed.hashes) / pushed.seconds if pushed.seconds else 0.0,
        "lost": max((v.missing for v in views), default=0),
        "complete_after_s.median": statistics.median(done) if done else None,
        "complete_after_s.max": max(done) if len(done) == len(views) else None,
        "views": [vars(v) for v in views],
    }


def table(res: dict) -> str:
    lines = [f"{res['pipelines']} pipelines x {res['specs_each']} specs through "
             f"{res['replicas']} replicas (workers {res['workers']}) on SeaweedFS; "
             f"{res['reads_while_pushing']} view reads while pushing "
             f"(every {res['read_every_s']:g} s)",
             f"pushed {res['pushed']} specs in {res['push_s']:.0f} s "
             f"({res['specs_per_s']:.1f} specs/s), {res['failed']} pushes failed"]
    for v in res["views"]:
        after = f"{v['after_s']:.2f} s" if v["after_s"] is not None else "NOT complete"
        lines.append(f"  replica {v['replica']} {v['view']:<16} complete {after:>14} after "
                     f"the last push; missing {v['missing']}, extra {v['extra']}, "
                     f"{v['polls']} polls")
    med, top = res["complete_after_s.median"], res["complete_after_s.max"]
    lines.append(f"lost specs (most missing from one view): {res['lost']}; complete after "
                 f"the last push: median {med if med is None else f'{med:.2f}'} s, "
                 f"max {top if top is None else f'{top:.2f}'} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest spack-pipelines",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--pipelines", type=int, default=16)
    ap.add_argument("--specs", type=int, default=1000, help="specs each pipeline pushes")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="[server] workers per replica")
    ap.add_argument("--read-every", type=float, default=1.0, metavar="S",
                    help="while pushing, read every view of every replica every S s, as "
                    "installs would (0: no reads until the last push)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds after the last push before a missing spec counts as lost")
    ap.add_argument("--out", type=Path, help="results.json, summary.txt and the replicas' "
                    "logs (default loadtest/results/spack-pipelines-<time>/)")
    args = ap.parse_args(argv)
    if not 1 <= args.pipelines <= 256 or not 1 <= args.specs <= 100_000 \
            or not 1 <= args.replicas <= 8 or not 1 <= args.workers <= 8:
        raise SystemExit("--pipelines 1..256, --specs 1..100000, --replicas 1..8, "
                         "--workers 1..8")
    out_dir = args.out = args.out or RESULTS / f"spack-pipelines-{dt.datetime.now():%Y%m%d-%H%M%S}"
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        res = asyncio.run(run(args, Path(tmp)))
    write_results(out_dir, res, table(res))
    return 0 if res["lost"] == 0 and res["complete_after_s.max"] is not None else 1
