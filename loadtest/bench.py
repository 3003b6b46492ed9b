"""Run the selected scenarios: rep 1 (ours, baseline, theirs, nginx), rep 2 (baseline, ours,
theirs, nginx), ...: with a baseline, ours and the baseline swap places every other rep;
with `alternate_scenarios`, each target's scenarios run in reverse order every other rep.

Each run of a target starts a fresh server in a fresh temp dir, seeds it, runs every
selected scenario that applies to it, and stops it (always, even on error or Ctrl-C).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadtest import scenarios as sc
from loadtest import targets
from loadtest.data import ensure_blob_file


@dataclass
class BenchConfig:
    scenarios: list[sc.Scenario]
    profile: sc.Profile
    repeat: int
    ours: targets.TargetSpec
    theirs: targets.TargetSpec | None
    nginx: targets.TargetSpec | None
    cache_dir: Path
    baseline: targets.TargetSpec | None = None
    tmp_root: Path | None = None
    wrk_bin: str = "wrk"
    curl_bin: str = "curl"
    wrk_threads: int = 1
    head_tool: str = "auto"
    keep_tmp: bool = False
    start_timeout: float = 60.0
    alternate_scenarios: bool = False
    extra: dict = field(default_factory=dict)

    def target_specs(self) -> list[targets.TargetSpec]:
        specs = [s for s in (self.ours, self.baseline, self.theirs) if s is not None]
        if self.nginx is not None and any("nginx" in s.kinds for s in self.scenarios):
            specs.append(self.nginx)
        return specs

    def to_dict(self) -> dict:
        return {
            "scenarios": [s.name for s in self.scenarios],
            "profile": asdict(self.profile),
            "repeat": self.repeat,
            "wrk_threads": self.wrk_threads,
            "head_tool": self.head_tool,
            "cache_dir": str(self.cache_dir),
            "tmp_root": str(self.tmp_root) if self.tmp_root else None,
            **self.extra,
        }


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def prepare_files(cfg: BenchConfig, log: Callable[[str], None]) -> sc.Files:
    needs = set().union(*(s.needs for s in cfg.scenarios))
    p = cfg.profile
    files = sc.Files()
    plan = [("big", "get", p.big_blob, 1), ("push_mono", "push-mono", p.push_blob, 2)]
    plan.append(("push_chunked", "push-chunked", p.push_blob, 3))
    for attr, label, size, seed in plan:
        if attr in needs:
            t0 = time.perf_counter()
            blob = ensure_blob_file(cfg.cache_dir, label, size, seed)
            setattr(files, attr, blob)
            took = time.perf_counter() - t0
            log(f"blob file {label}: {size} bytes, {blob.digest[:19]}... ({took:.1f}s)")
    return files


async def run(cfg: BenchConfig, doc: dict, log: Callable[[str], None] = print) -> None:
    """Fill doc["runs"] in place (so an interrupted bench still has what it measured)."""
    if cfg.tmp_root is not None:
        cfg.tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="loadtest-work-", dir=cfg.tmp_root))
    doc.setdefault("runs", [])
    doc.setdefault("work_dirs", []).append(str(work))
    try:
        files = prepare_files(cfg, log)
        opts = sc.Options(
            profile=cfg.profile,
            work_dir=work,
            wrk_bin=cfg.wrk_bin,
            curl_bin=cfg.curl_bin,
            wrk_threads=cfg.wrk_threads,
            head_tool=cfg.head_tool,
        )
        shared: dict = {}
        specs = cfg.target_specs()
        for rep in range(cfg.repeat):  # bounded by --repeat
            order = list(specs)
            if cfg.baseline is not None and rep % 2 == 1:
                # ours, baseline / baseline, ours / ...: a drift of the machine over the
                # bench (warming caches, other load) does not favour either build
                order[0], order[1] = order[1], order[0]
            for spec in order:
                chosen = [s for s in cfg.scenarios if spec.kind in s.kinds]
                if cfg.alternate_scenarios and rep % 2 == 1:
                    chosen.reverse()  # the first scenario on a fresh server is not always one
                if chosen:
                    await run_target(cfg, spec, chosen, rep, opts, files, shared, doc, log)
        doc["head_tool"] = shared.get("head_tool", cfg.head_tool)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run_target(
    cfg: BenchConfig,
    spec: targets.TargetSpec,
    chosen: list[sc.Scenario],
    rep: int,
    opts: sc.Options,
    files: sc.Files,
    shared: dict,
    doc: dict,
    log: Callable[[str], None],
) -> None:
    record: dict = {
        "rep": rep + 1,
        "target": spec.name,
        "started_at": now(),
        "planned": [s.name for s in chosen],
        "scenarios": {},
    }
    doc["runs"].append(record)
    server = targets.prepare(spec, cfg.tmp_root)
    record.update(pid=None, tmp_dir=str(server.tmp_dir), cmd=server.cmd, url=server.url)
    needs = set().union(*(s.needs for s in chosen))
    try:
        if server.kind == "nginx":
            sc.seed_static(server, needs, files)
        server.spawn()
        record["pid"] = server.pid
        await server.wait_ready(cfg.start_timeout)
        log(f"[rep {rep + 1}/{cfg.repeat}] {spec.name}: started pid {server.pid} at {server.url}")
        t0 = time.perf_counter()
        seed = await sc.seed(server, needs, opts, files)
        record["seed_seconds"] = seed.seconds
        record["rss_after_seed_mib"] = server.rss() / sc.MiB
        log(f"[rep {rep + 1}/{cfg.repeat}] {spec.name}: seeded in {time.perf_counter() - t0:.1f}s")
        for scenario in chosen:
            ctx = sc.Ctx(server=server, opts=opts, files=files, seed=seed, rep=rep, shared=shared)
            record["scenarios"][scenario.name] = entry = {"started_at": now()}
            t0 = time.perf_counter()
            try:
                out = await scenario.run(ctx)
                entry.update(status="ok", **out)
                head = out["metrics"][0]
                msg = f"{head['value']:,.3f} {head['unit']}"
            except asyncio.CancelledError:
                entry.update(status="interrupted", wall_seconds=time.perf_counter() - t0)
                raise
            except sc.Unsupported as exc:
                entry.update(status="unsupported", reason=str(exc))
                msg = f"unsupported ({exc})"
            except Exception as exc:  # an invalid run is recorded, the bench goes on
                entry.update(status="error", error=f"{type(exc).__name__}: {exc}")
                entry["traceback"] = traceback.format_exc(limit=8)
                msg = f"ERROR {type(exc).__name__}: {exc}"
            entry["wall_seconds"] = time.perf_counter() - t0
            if server.proc is not None and server.proc.poll() is not None:
                entry.update(status="error", error=f"server died: {server.log_tail(2000)}")
                msg = "ERROR server died"
            log(f"[rep {rep + 1}/{cfg.repeat}] {spec.name}: {scenario.name}: {msg}")
            if entry["status"] == "error" and server.proc.poll() is not None:
                break
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        log(f"[rep {rep + 1}/{cfg.repeat}] {spec.name}: ERROR {record['error']}")
    finally:
        failed = "error" in record or any(
            e.get("status") == "error" for e in record["scenarios"].values()
        )
        if failed:
            record["log_tail"] = server.log_tail(2000)
        server.stop(keep_tmp=cfg.keep_tmp)
        record["stopped_at"] = now()
