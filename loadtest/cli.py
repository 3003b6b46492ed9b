"""`python -m loadtest bench|list`: compare our registry with docker-registry and nginx."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

from loadtest import bench, report, sysinfo, targets
from loadtest import scenarios as sc

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "registry-loadtest"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the scenarios")
    sub.add_parser("spack", help="spack build cache at scale (python -m loadtest spack -h)",
                   add_help=False)
    sub.add_parser("spack-seed", help="seed a build cache with N specs, no HTTP "
                   "(python -m loadtest spack-seed -h)")
    sub.add_parser("spack-pipelines", help="concurrent spack pipelines through replicas "
                   "on SeaweedFS (python -m loadtest spack-pipelines -h)", add_help=False)
    sub.add_parser("spack-latency", help="push-to-index latency and spec queries in a "
                   "seeded build cache (python -m loadtest spack-latency -h)", add_help=False)
    sub.add_parser("spack-rss", help="a worker's memory over a seeded build cache "
                   "(python -m loadtest spack-rss -h)")
    sub.add_parser("spack-compose", help="one compose request's memory and latency over "
                   "a seeded build cache (python -m loadtest spack-compose -h)",
                   add_help=False)
    sub.add_parser("tls-rss", help="a worker's memory serving a large blob over TLS "
                   "(python -m loadtest tls-rss -h)", add_help=False)
    sub.add_parser("hotpath", help="one manifest GET's CPU in process "
                                   "(python -m loadtest hotpath -h)", add_help=False)
    sub.add_parser("search-fresh", help="how soon a push is searchable on a real server "
                                        "(python -m loadtest search-fresh -h)", add_help=False)
    sub.add_parser("search", help="search latency over a 100,000-document index "
                                  "(python -m loadtest search -h)", add_help=False)
    sub.add_parser("fanout", help="many clients through node caches "
                                  "(python -m loadtest fanout -h)", add_help=False)
    b = sub.add_parser("bench", help="run the benchmark", description=bench.__doc__)
    b.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="scenario or group to run (repeatable; default: all but big-repo-*; `all`: "
        "every one; `big-repo`: big-repo-*; see `list`)",
    )
    b.add_argument("--repeat", type=int, default=3, help="alternating runs per target (3)")
    b.add_argument(
        "--alternate-scenarios",
        action="store_true",
        help="run each target's scenarios in reverse order every other rep, so none "
        "always runs first on a fresh server (for comparing two scenarios)",
    )
    b.add_argument("--quick", action="store_true", help="small sizes and 1 s runs, for smoke tests")
    b.add_argument("--out", type=Path, help="results dir (default loadtest/results/<time>/)")
    b.add_argument(
        "--ours-cmd",
        default=os.environ.get("LOADTEST_OURS_CMD"),
        help="command for our server, with {python} {listen} {host} {port} {data} "
        "{config}; or `docker-registry` to stand in for it "
        "(env LOADTEST_OURS_CMD; default: python -m registry serve ...)",
    )
    b.add_argument("--workers", type=int, help="our server: [server] workers = N")
    b.add_argument("--ours-config", type=Path, help="our server: base TOML config file")
    b.add_argument(
        "--ours-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="our server: set a config key (repeatable), e.g. storage.fsync=false",
    )
    b.add_argument(
        "--auth",
        action="store_true",
        help="our server (and the baseline) with token auth: anonymous pulls of loadtest/*, "
        "a user that seeds; for manifest-get, manifest-head and manifest-get-bearer",
    )
    b.add_argument("--theirs-bin", default="docker-registry", help="docker-registry binary")
    b.add_argument("--no-theirs", action="store_true", help="skip docker-registry")
    b.add_argument(
        "--baseline-src",
        type=Path,
        metavar="DIR",
        help="add target `baseline`: our registry run from checkout DIR (PYTHONPATH=DIR, "
        "same command and config as ours), alternated with the others",
    )
    b.add_argument("--nginx-bin", default="nginx", help="nginx binary")
    b.add_argument("--no-nginx", action="store_true", help="skip the nginx ceiling")
    b.add_argument("--nginx-workers", type=int,
                   help="nginx worker_processes (default: auto, one per core)")
    b.add_argument("--wrk-bin", default="wrk")
    b.add_argument("--curl-bin", default="curl")
    b.add_argument(
        "--wrk-threads", type=int, help="wrk threads (default: half the cores, at least 1)"
    )
    b.add_argument(
        "--head-tool",
        choices=["auto", "wrk", "headload"],
        default="auto",
        help="tool for manifest HEAD (auto: wrk if it can do HEAD, else headload)",
    )
    b.add_argument("--duration", type=float, help="seconds per wrk run (10; quick 1)")
    b.add_argument("--connections", type=int, help="wrk connections (64; quick 4)")
    b.add_argument("--big-tags", type=int, help="big-repo-*: tags in the big repository "
                   "(50,000; quick 2,000)")
    b.add_argument("--big-page", type=int, help="big-repo-page: tags per page (`n`) of the "
                   "page read from the middle (100)")
    b.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where generated blob files are cached ({DEFAULT_CACHE})",
    )
    b.add_argument("--tmp-root", type=Path, help="parent of the servers' temp dirs")
    b.add_argument("--keep-tmp", action="store_true", help="keep the servers' temp dirs")
    b.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    return p  # fmt: skip


def _settings(items: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise SystemExit(f"--ours-set {item!r}: expected SECTION.KEY=VALUE")
        try:
            tomllib.loads(f"x = {value}")
            literal = value
        except tomllib.TOMLDecodeError:
            literal = targets.toml_value(value)
        out.setdefault(section, {})[name] = literal
    return out


# --auth: the user that seeds and asks for tokens, and what the rules give it.
AUTH_USER = ("loadtest", "loadtest-password")
AUTH_SCENARIOS = frozenset({"manifest-get", "manifest-head", "manifest-get-bearer"})


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(targets.toml_value(i) for i in items) + "]"


def auth_settings() -> dict[str, str]:
    """[auth] for --auth (TOML literals): token mode, the user, anonymous pulls."""
    from registry.auth.passwords import hash_password

    name, password = AUTH_USER
    return {
        "mode": '"token"',
        "users": _toml_list([f"{name}:{hash_password(password)}"]),
        "rules": _toml_list(["loadtest/* anonymous pull",
                             f"loadtest/* user:{name} pull,push,delete"]),
        "audit_log": '""',  # pulls are not audited; nothing is written next to the repo
    }


def _missing_tools(cfg: bench.BenchConfig) -> list[str]:
    need = [cfg.wrk_bin, cfg.curl_bin]
    if cfg.theirs is not None:
        need.append(cfg.theirs.binary)
    if cfg.ours.flavor == "docker-registry":
        need.append(cfg.ours.binary)
    if cfg.nginx is not None:
        need.append(cfg.nginx.binary)
    return [t for t in need if shutil.which(t) is None]


def _ours_importable() -> bool:
    p = subprocess.run(
        [sys.executable, "-c", "import registry.cli"],
        cwd=targets.REPO_ROOT,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return p.returncode == 0


def _check_baseline(src: Path) -> str | None:
    """Why checkout `src` cannot run as the baseline, or None."""
    if not (src / "registry" / "__init__.py").is_file():
        return f"--baseline-src {src}: no registry/__init__.py there"
    probe = "import os, registry; print(os.path.realpath(registry.__file__))"
    p = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=src,
        env=dict(os.environ, PYTHONPATH=str(src)),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if p.returncode != 0:
        return f"--baseline-src {src}: import registry fails: {p.stderr.strip()[-500:]}"
    if not Path(p.stdout.strip()).is_relative_to(src.resolve()):
        return f"--baseline-src {src}: registry imports from {p.stdout.strip()}, not from there"
    return None


def build_config(args: argparse.Namespace) -> bench.BenchConfig:
    try:
        chosen = sc.select(args.scenario)
    except KeyError as exc:
        raise SystemExit(f"{exc.args[0]}; known: {', '.join(sc.BY_NAME)}") from None
    if not 1 <= args.repeat <= 100:
        raise SystemExit("--repeat must be between 1 and 100")
    profile = sc.QUICK if args.quick else sc.FULL
    changes = {}
    if args.duration is not None:
        if not 0 < args.duration <= 600:
            raise SystemExit("--duration must be in (0, 600]")
        changes["duration"] = args.duration
    if args.connections is not None:
        if not 1 <= args.connections <= 4096:
            raise SystemExit("--connections must be in [1, 4096]")
        changes["connections"] = args.connections
    if args.big_tags is not None:
        if not 100 <= args.big_tags <= 1_000_000:
            raise SystemExit("--big-tags must be in [100, 1000000]")
        changes["big_tags"] = args.big_tags
    if args.big_page is not None:
        if not 1 <= args.big_page <= 10_000:
            raise SystemExit("--big-page must be in [1, 10000]")
        changes["big_page"] = args.big_page
    if changes:
        import dataclasses

        profile = dataclasses.replace(profile, **changes)
    settings = _settings(args.ours_set)
    credentials = None
    if args.auth:
        if any(s.name not in AUTH_SCENARIOS for s in chosen):
            raise SystemExit(f"--auth: only {', '.join(sorted(AUTH_SCENARIOS))} (the other "
                             "scenarios push without credentials)")
        credentials = AUTH_USER
        settings = {**settings, "auth": {**auth_settings(), **settings.get("auth", {})}}
    ours = targets.ours_spec(args.ours_cmd, args.workers, args.ours_config, settings)
    ours.credentials = credentials
    theirs = None
    if not args.no_theirs:
        theirs = targets.TargetSpec(
            "theirs", "docker-registry", binary=shutil.which(args.theirs_bin) or args.theirs_bin
        )
    baseline = None
    if args.baseline_src is not None:
        if ours.flavor != "ours":
            raise SystemExit("--baseline-src needs our registry as ours (not --ours-cmd "
                             "docker-registry)")
        baseline = targets.baseline_spec(ours, args.baseline_src)
    nginx = None
    if not args.no_nginx:
        nginx = targets.TargetSpec(
            "nginx", "nginx", binary=shutil.which(args.nginx_bin) or args.nginx_bin,
            workers=args.nginx_workers,
        )
    cores = os.cpu_count() or 1
    return bench.BenchConfig(
        scenarios=chosen,
        profile=profile,
        repeat=args.repeat,
        ours=ours,
        theirs=theirs,
        baseline=baseline,
        nginx=nginx,
        cache_dir=args.cache_dir,
        tmp_root=args.tmp_root,
        wrk_bin=args.wrk_bin,
        curl_bin=args.curl_bin,
        wrk_threads=args.wrk_threads or max(1, cores // 2),
        head_tool=args.head_tool,
        keep_tmp=args.keep_tmp,
        alternate_scenarios=args.alternate_scenarios,
        extra={
            "ours": ours.describe(),
            "theirs": theirs.describe() if theirs else None,
            "baseline": baseline.describe() if baseline else None,
            "quick": args.quick,
            "alternate_scenarios": args.alternate_scenarios,
        },
    )


async def _run_with_signals(cfg: bench.BenchConfig, doc: dict) -> None:
    """Run the bench; SIGINT/SIGTERM cancel it, and every `finally` stops its servers."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    got: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not got:
            print(f"\n{sig.name}: stopping servers and writing partial results...", flush=True)
        got.append(sig.name)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await bench.run(cfg, doc, log=lambda m: print(m, flush=True))
    except asyncio.CancelledError:
        if not got:
            raise
        task.uncancel()
        doc["interrupted"] = got[0]
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _run_loop(coro) -> None:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    except ImportError:  # pragma: no cover
        asyncio.run(coro)


def cmd_list() -> int:
    for s in sc.SCENARIOS:
        kinds = "registries + nginx" if "nginx" in s.kinds else "registries"
        extra = "" if s.default else ", not by default"
        print(f"{s.name:16} {s.title} [{kinds}{extra}]")
    for group, members in sc.GROUPS.items():
        print(f"{group:16} = {' '.join(members)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    cfg = build_config(args)
    missing = _missing_tools(cfg)
    if missing:
        print(
            f"missing tools: {', '.join(missing)} "
            "(Debian: apt-get install docker-registry wrk nginx-light curl)",
            file=sys.stderr,
        )
        return 2
    if cfg.baseline is not None and (why := _check_baseline(cfg.baseline.src)):
        print(why, file=sys.stderr)
        return 2
    if cfg.ours.flavor == "ours" and args.ours_cmd is None and not _ours_importable():
        print(
            "our registry is not importable (python -c 'import registry.cli' fails); "
            "use --ours-cmd docker-registry to validate the harness",
            file=sys.stderr,
        )
        return 2
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or DEFAULT_RESULTS / stamp
    doc: dict = {
        "schema": "registry-loadtest/1",
        "started_at": bench.now(),
        "config": cfg.to_dict(),
        "scenarios": [s.describe() for s in cfg.scenarios],
        "machine": sysinfo.machine(),
        "versions": sysinfo.versions(
            cfg.theirs.binary if cfg.theirs else None,
            cfg.nginx.binary if cfg.nginx else None,
            cfg.wrk_bin,
            cfg.curl_bin,
            cfg.baseline.src if cfg.baseline else None,
        ),
        "targets": {
            s.name: {"flavor": s.flavor, "describe": s.describe()} for s in cfg.target_specs()
        },
        "interrupted": None,
    }
    names = {"ours": "ours", "baseline": "baseline", "theirs": "docker-registry", "nginx": "nginx"}
    if cfg.ours.flavor == "docker-registry":
        names["ours"] = "ours=docker-registry"
    print(
        f"loadtest: {len(cfg.scenarios)} scenario(s), {cfg.repeat} rep(s), "
        f"profile {cfg.profile.name}; results in {out_dir}",
        flush=True,
    )
    failed = False
    try:
        _run_loop(_run_with_signals(cfg, doc))
    except Exception as exc:  # recorded, then the partial results are still written
        doc["error"] = f"{type(exc).__name__}: {exc}"
        print(f"loadtest: {doc['error']}", file=sys.stderr)
        failed = True
    finally:
        doc["finished_at"] = bench.now()
        rows = report.summarize(doc, [s.name for s in cfg.scenarios])
        doc["summary"] = rows
        doc["complete"] = not failed and not doc["interrupted"]
        report.write_json(out_dir / "results.json", doc)
        table = report.format_table(rows, cfg.repeat, names)
        (out_dir / "table.txt").write_text(table + "\n")
        print("\n" + table, flush=True)
        if not args.no_chart:
            others = " / ".join(names[s.name] for s in cfg.target_specs()[1:])
            title = (
                f"{names['ours']} vs {others}: {cfg.profile.name} profile, "
                f"medians of {cfg.repeat} run(s)"
            )
            err = report.write_chart(out_dir / "ratios.png", rows, title)
            if err:
                print(f"chart: {err}", file=sys.stderr)
        print(f"\nwrote {out_dir}/results.json", flush=True)
    if doc["interrupted"]:
        return 130
    errors = any(
        "error" in run or any(e.get("status") == "error" for e in run["scenarios"].values())
        for run in doc.get("runs", [])
    )
    return 1 if failed or errors else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["spack"]:  # its own options: see loadtest/spack_bench.py
        from loadtest import spack_bench

        return spack_bench.main(argv[1:])
    if argv[:1] == ["spack-seed"]:  # its own options: see loadtest/spack_seed.py
        from loadtest import spack_seed

        return spack_seed.main(argv[1:])
    if argv[:1] == ["spack-pipelines"]:  # its own options: see loadtest/spack_pipelines.py
        from loadtest import spack_pipelines

        return spack_pipelines.main(argv[1:])
    if argv[:1] == ["spack-latency"]:  # its own options: see loadtest/spack_latency.py
        from loadtest import spack_latency

        return spack_latency.main(argv[1:])
    if argv[:1] == ["spack-rss"]:  # its own options: see loadtest/spack_rss.py
        from loadtest import spack_rss

        return spack_rss.main(argv[1:])
    if argv[:1] == ["spack-compose"]:  # its own options: see loadtest/spack_compose.py
        from loadtest import spack_compose

        return spack_compose.main(argv[1:])
    if argv[:1] == ["tls-rss"]:  # its own options: see loadtest/tls_rss.py
        from loadtest import tls_rss

        return tls_rss.main(argv[1:])
    if argv[:1] == ["hotpath"]:  # its own options: see loadtest/hotpath.py
        from loadtest import hotpath

        return hotpath.main(argv[1:])
    if argv[:1] == ["search"]:  # its own options: see loadtest/search_bench.py
        from loadtest import search_bench

        return search_bench.main(argv[1:])
    if argv[:1] == ["search-fresh"]:  # its own options: see loadtest/search_fresh.py
        from loadtest import search_fresh

        return search_fresh.main(argv[1:])
    if argv[:1] == ["scan"]:  # its own options: see loadtest/scan_bench.py
        from loadtest import scan_bench

        return scan_bench.main(argv[1:])
    if argv[:1] == ["fanout"]:  # its own options: see loadtest/fanout.py
        from loadtest import fanout

        return fanout.main(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "list":
        return cmd_list()
    return cmd_bench(args)
