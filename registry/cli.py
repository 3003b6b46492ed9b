"""Command line: `registry serve`, `registry config check FILE`, `registry reindex`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from registry.config import Config, ConfigError, load


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    if getattr(args, "data", None):
        data = Path(args.data)
        out["storage"] = {"root": str(data / "storage")}
        out["index"] = {"path": str(data / "index.sqlite")}
    if getattr(args, "listen", None):
        out["server"] = {"listen": args.listen}
    return out


def _load(args: argparse.Namespace) -> Config:
    return load(args.config, overrides=_overrides(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from registry.server import serve

    return serve(_load(args))


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        config = load(args.file)
    except ConfigError as exc:
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    if args.show:
        print(json.dumps(config.to_dict(), indent=2))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from registry.core.factory import build_registry
    from registry.core.hooks import NullHooks
    from registry.core.indexing import rebuild
    from registry.index.db import Index
    from registry.storage import create_driver

    config = _load(args)

    async def run() -> None:
        driver = create_driver(config.storage)
        index = Index(config.index.path)
        await index.open()
        try:
            stats = await rebuild(build_registry(driver, NullHooks()), index)
        finally:
            await index.close()
            await driver.close()
        print(json.dumps(dataclasses.asdict(stats)))

    asyncio.run(run())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="registry", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", help="TOML config file (default: built-in defaults)")
        sp.add_argument("--data", help="data directory: storage in DIR/storage, "
                                       "index in DIR/index.sqlite")

    s = sub.add_parser("serve", help="run the registry")
    common(s)
    s.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:5000)")
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("config", help="configuration tools")
    csub = c.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser("check", help="validate a config file and say what is wrong")
    check.add_argument("file")
    check.add_argument("--show", action="store_true", help="print the effective config")
    check.set_defaults(func=cmd_config_check)

    r = sub.add_parser("reindex", help="rebuild the SQLite index from storage")
    common(r)
    r.set_defaults(func=cmd_reindex)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
