"""Command line: `registry serve`, `registry config check FILE`, `registry reindex`,
`registry spack import DIR`, `registry spack list`, `registry cache stats|warm`,
`registry du`, `registry gc`, `registry scrub`, `registry users ...`, `registry tokens ...`,
`registry keys ...`, `registry sign`, `registry verify`, `registry requirements`,
`registry search` (cli_search.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from registry.config import Config, ConfigError, load
from registry.units import human_size

if TYPE_CHECKING:  # imported where used: `registry config check` stays light
    from registry.core.service import Registry
    from registry.index.db import Index
    from registry.index.hooks import IndexHooks
    from registry.index.records import SpecRow
    from registry.spack.wiring import Spack
    from registry.storage.driver import Driver

LIST_PAGE = 1000  # spec rows `registry spack list` reads at a time


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


def _check_signing(config: Config) -> None:
    """gpg can sign with [spack] signing_key, and [auth] rules and users,
    [trust] policies and [scan] spack_map files parse (ConfigError saying why not)."""
    if config.auth.mode == "token":
        from registry.auth.wiring import parse

        parse(config.auth)
    if config.trust.policies:
        from registry.trust.policy import parse_policies

        parse_policies(config.trust)
    if config.scan.spack_map:
        from registry.scan import spack_map

        try:
            spack_map.load(config.scan.spack_map)
        except spack_map.MapError as exc:
            raise ConfigError([f"[scan] spack_map: {exc}"]) from None
    if not config.spack.signing_key:
        return
    from registry.spack.signing import GpgSigner, SigningError

    try:
        GpgSigner.open(config.spack.signing_key, config.spack.gnupg_home)
    except SigningError as exc:
        raise ConfigError([f"[spack] signing_key: {exc}"]) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from registry.server import serve

    config = _load(args)
    _check_signing(config)  # before any worker forks: one clear error
    return serve(config, reload=lambda: _load(args))


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        config = load(args.file)
        _check_signing(config)
    except ConfigError as exc:
        print(f"{args.file}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    if args.show:
        print(json.dumps(config.to_dict(), indent=2))
    return 0


@contextlib.asynccontextmanager
async def _store(config: Config) -> AsyncIterator[tuple[Driver, Index]]:
    """The configured store and the SQLite index, open (for the offline commands)."""
    from registry.arch.indexed import describer
    from registry.index.db import Index
    from registry.storage import create_driver

    driver = create_driver(config.storage)
    index = Index(config.index.path, describer)
    await index.open()
    try:
        yield driver, index
    finally:
        await driver.close()
        await index.close()


def cmd_reindex(args: argparse.Namespace) -> int:
    from registry.arch.compat_check import CompatCheck
    from registry.core.areas import ScanArea, TrustArea
    from registry.core.factory import CoreSettings, build_registry
    from registry.core.hooks import NullHooks
    from registry.core.indexing import rebuild
    from registry.scan import summary
    from registry.scan.results import ScanResults
    from registry.trust.feed import reverify_all
    from registry.trust.keys import KeyStore
    from registry.trust.material import key_source, load_trust_store
    from registry.trust.verify import Verifier

    config = _load(args)
    try:
        trust_store = load_trust_store(config.trust.notation_certs)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None

    async def run() -> None:
        async with _store(config) as (driver, index):
            # Compatibility artifacts' documents are read and indexed as at push.
            settings = CoreSettings(artifact_check=CompatCheck())
            reg = build_registry(driver, NullHooks(), settings)
            # Each scanned manifest's summary, from its result in `_scan/`.
            results = ScanResults(ScanArea(driver).results())

            async def scans(index: Index) -> int:
                return await summary.sync(results, index)

            stats = await rebuild(reg, index, rooms=(scans,))
            # Each manifest's signatures, verified with the trust material the server has.
            signed = await reverify_all(reg, Verifier(key_source(
                KeyStore(TrustArea(driver)), trust_store)), index)
        print(json.dumps({**dataclasses.asdict(stats), "signatures_checked": signed}))

    asyncio.run(run())
    return 0


def cmd_spack_import(args: argparse.Namespace) -> int:
    from registry.progressbar import ProgressBar
    from registry.spack import importer
    from registry.spack.layout import bucket_of

    config = _load(args)
    root = Path(args.dir)
    if not root.is_dir():
        print(f"spack import: {root} is not a directory", file=sys.stderr)
        return 2
    if bucket_of(args.cache) is None:
        print(f"spack import: {args.cache!r} cannot be a build cache name (its first "
              "component must be a valid S3 bucket name)", file=sys.stderr)
        return 2
    todo = importer.plan(root)
    if todo.files == 0:
        print(f"spack import: no build cache under {root} (no v3/, blobs/ or build_cache/)",
              file=sys.stderr)
        return 2

    async def run() -> importer.Summary:
        async with _store(config) as (driver, index):
            reg, hooks, spack = spack_registry(config, driver, index)
            bar = ProgressBar(todo.files, todo.bytes)
            try:
                summary = await importer.run(reg.objects, args.cache, todo, args.jobs,
                                             bar.update)
                await spack.settle()
                return summary
            finally:
                bar.close()
                await hooks.close()

    summary = asyncio.run(run())
    print(f"{args.cache}: {summary.stored} files stored, {summary.unchanged} already there, "
          f"{len(todo.skipped)} skipped, {len(summary.failed)} refused")
    for rel, why in summary.failed:
        print(f"  refused {rel}: {why}", file=sys.stderr)
    return 1 if summary.failed else 0


def spack_registry(config: Config, driver: Driver,
                   index: Index) -> tuple[Registry, IndexHooks, Spack]:
    """(registry, hooks, Spack room) over `driver` as the server builds them, for tools
    that write a store offline (`spack import`, loadtest's spack-seed): the index learns
    of what they write as it would of a push. The caller closes the hooks."""
    from registry.core.areas import SpackArea
    from registry.core.factory import CoreSettings, build_registry
    from registry.index.hooks import IndexHooks
    from registry.spack.catalog import SpecCatalog
    from registry.spack.wiring import Spack

    hooks = IndexHooks(index)
    hooks.start()
    spack = Spack(SpackArea(driver), SpecCatalog(index, hooks))
    settings = dataclasses.replace(CoreSettings.from_config(config),
                                   object_keys=spack.object_keys)
    return build_registry(driver, hooks, settings, decorators=[spack.decorate]), hooks, spack


def cmd_spack_list(args: argparse.Namespace) -> int:
    from registry.api.spack_api import spec_json
    from registry.core.areas import SpackArea
    from registry.spack import catalog
    from registry.spack.service import SpackCaches

    config = _load(args)
    shown, caches = 0, set()

    def show(row: SpecRow) -> None:
        nonlocal shown
        if args.json:  # as json.dumps(rows, indent=1) would print them, a row at a time
            item = "\n".join(" " + line
                             for line in json.dumps(spec_json(row), indent=1).split("\n"))
            print(("[\n" if not shown else ",\n") + item, end="")
        else:
            compiler = f" %{row.compiler}" if row.compiler else ""
            print(f"{row.hash[:7]} {row.name}@{row.version}{compiler} "
                  f"arch={row.platform}-{row.os}-{row.target}  {row.cache}  "
                  f"{human_size(row.size)}")
        shown += 1
        caches.add(row.cache)

    async def run() -> None:
        async with _store(config) as (driver, index):
            # The store is the truth: bring the index's rows up to it first, so the
            # list is right with the server stopped, or another replica's pushes.
            specs = catalog.SpecCatalog(index)
            await catalog.current(SpackCaches(SpackArea(driver), sink=specs), specs)
            after: tuple[str, ...] | None = None
            while True:  # a page at a time: memory does not grow with the specs
                rows = await specs.specs(args.cache, name=args.name, target=args.target,
                                         after=after, limit=LIST_PAGE)
                for row in rows:
                    show(row)
                if len(rows) < LIST_PAGE:
                    return
                last = rows[-1]
                after = (last.name, last.hash, last.cache)

    asyncio.run(run())
    if args.json:
        print("[]" if not shown else "\n]")
        return 0
    print(f"{shown} spec{'s' * (shown != 1)} in {len(caches)} "
          f"cache{'s' * (len(caches) != 1)}", file=sys.stderr)
    return 0


def cmd_du(args: argparse.Namespace) -> int:
    from registry.core.errors import NameInvalid
    from registry.core.usage import Usage

    config = _load(args)

    async def run() -> dict:
        async with _store(config) as (_, index):
            return await Usage(index).report(args.namespace)

    try:
        report = asyncio.run(run())
    except NameInvalid:
        print(f"registry: {args.namespace!r} is not a repository name or namespace",
              file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = report["namespaces"]
    print(f"{'NAMESPACE':<32} {'REPOS':>6} {'LOGICAL':>10} {'STORED':>10}")
    for row in rows:
        print(f"{row['namespace']:<32} {row['repositories']:>6} {human_size(row['logical']):>10} "
              f"{human_size(row['unique']):>10}")
    if "total" in report:
        total = report["total"]
        print(f"{'(all, each digest once)':<32} {'':>6} {human_size(total['logical']):>10} "
              f"{human_size(total['unique']):>10}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from registry.app import collection_settings
    from registry.cli_auth import parse_duration
    from registry.core.factory import build_registry
    from registry.core.gc import GcBusy, collect
    from registry.core.hooks import NullHooks
    from registry.core.indexing import rebuild
    from registry.startup import StartupError, lock_instance

    config = _load(args)
    try:
        grace = parse_duration(args.grace) if args.grace else config.gc.grace
    except ValueError as exc:
        print(f"registry: --grace: {exc}", file=sys.stderr)
        return 2
    try:
        # A server on this store caches blob sizes: it must collect itself.
        locks = lock_instance(config)
    except StartupError:
        print("registry: a registry is running on this store: it collects online "
              "(POST /api/v1/gc as an admin, or [gc] interval); stop it to collect from here",
              file=sys.stderr)
        return 2

    async def run():
        async with _store(config) as (driver, index):
            reg = build_registry(driver, NullHooks())
            report = await collect(driver, reg, grace=grace, dry_run=args.dry_run,
                                   owner="registry gc", **collection_settings(config))
            if (report.deleted or report.manifests_deleted) and not args.dry_run:
                await rebuild(reg, index)  # the index drops the links removed
            return report

    try:
        report = asyncio.run(run())
    except GcBusy as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1
    finally:
        for fd in locks:
            os.close(fd)
    if args.json:
        print(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        verb = "would free" if args.dry_run else "freed"
        if config.gc.retention:
            print(f"untagged manifests {'to delete' if args.dry_run else 'deleted'} by the "
                  f"retention rules: {report.manifests_deleted}")
        print(f"{report.blobs} blobs, {report.referenced} referenced; {verb} "
              f"{report.deleted} ({human_size(report.bytes_freed)}); kept {report.kept_recent} "
              f"younger than the grace period and {report.kept_seen} in use; "
              f"{report.uploads_purged} abandoned upload(s) deleted")
    return 0


def cmd_scrub(args: argparse.Namespace) -> int:
    from registry.core.scrub import scrub

    config = _load(args)

    async def run():
        async with _store(config) as (driver, _):
            def progress(blobs: int, size: int) -> None:
                if not args.json and sys.stderr.isatty():
                    print(f"\r{blobs} blobs, {human_size(size)} checked", end="", file=sys.stderr)

            return await scrub(driver, repair=args.repair, jobs=args.jobs, progress=progress)

    report = asyncio.run(run())
    if args.json:
        print(json.dumps({**dataclasses.asdict(report), "clean": report.clean}, indent=2))
    else:
        print(f"{report.blobs} blobs, {human_size(report.bytes)} re-hashed")
        for bad in report.corrupt:
            print(f"corrupt: {bad['digest']} (hashes to {bad['actual']})")
        for digest in report.quarantined:
            print(f"quarantined: {digest}")
        for bad in report.unreadable:
            print(f"unreadable: {bad['digest']}: {bad['error']}")
        for link in report.missing:
            print(f"missing: {link['kind']} {link['digest']} of {link['repository']}")
        print("clean" if report.clean else "problems found")
    return 0 if report.clean else 1


def cmd_cache_stats(args: argparse.Namespace) -> int:
    import os

    from registry.cache.stats import StatsFiles

    config = _load(args)
    if not config.cache.enabled:
        print("cache stats: this configuration is not a node cache ([cache] upstream is "
              "empty)", file=sys.stderr)
        return 2
    totals, live = StatsFiles(config.cache.dir).totals()
    blobs = held = 0
    for root, _, names in os.walk(Path(config.cache.dir) / "blobs"):
        for name in names:
            blobs += 1
            held += os.stat(os.path.join(root, name)).st_size
    doc = {"upstream": config.cache.upstream, "dir": config.cache.dir,
           "processes_counting": live, "blobs_held": blobs, "bytes_held": held,
           "max_bytes": config.cache.max_bytes, "host_aware": config.cache.host_aware}
    if config.cache.host_aware:  # what the cache resolves index tags for, as it finds it
        from registry.arch.detect import detect
        from registry.arch.host import host_query

        doc["host"] = config.cache.host or host_query(detect().host)
    doc.update(totals.to_json())
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    asked = totals.hits + totals.misses + totals.coalesced
    for key, value in doc.items():
        print(f"{key:<20} {value}")
    if asked:
        print(f"{'hit ratio':<20} {(totals.hits + totals.coalesced) / asked:.3f} "
              "(hits and coalesced over all blob requests)")
    return 0


def cmd_cache_warm(args: argparse.Namespace) -> int:
    from registry.cache.warm import Ref, Warmer, WarmError
    from registry.progressbar import ProgressBar
    from registry.spack.lockfile import LockfileError, spec_tags

    try:
        refs = [Ref.parse(r) for r in args.refs]
        if args.spack_lock:
            if not args.spack_cache:
                raise WarmError("--spack-lock needs --spack-cache (the build cache's OCI "
                                "repository, as in oci://HOST/REPO)")
            cache = Ref.parse(args.spack_cache).repo
            refs += [Ref(cache, tag) for tag in spec_tags(args.spack_lock)]
    except (WarmError, LockfileError) as exc:
        print(f"cache warm: {exc}", file=sys.stderr)
        return 2
    if not refs:
        print("cache warm: nothing to warm (give references or --spack-lock)", file=sys.stderr)
        return 2
    url = args.url
    if url is None:
        config = _load(args)
        host, _, port = config.server.listen.rpartition(":")
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]", "") else host
        url = f"{'https' if config.server.tls_cert else 'http'}://{host}:{port}"
    warmer = Warmer(url, args.jobs, set(args.platform) if args.platform else None,
                    args.cafile)

    async def run() -> tuple[int, int, int]:
        plan = await warmer.plan(refs)
        bar = ProgressBar(len(plan.blobs), plan.bytes)
        try:
            got = await warmer.fetch(plan, bar.update)
        finally:
            bar.close()
        return plan.manifests, len(plan.blobs), got

    manifests, blobs, got = asyncio.run(run())
    print(f"warmed {len(refs)} reference(s) through {url}: {manifests} manifests, "
          f"{blobs} blobs, {got} bytes, {len(warmer.failed)} failed")
    for what, why in warmer.failed:
        print(f"  failed {what}: {why}", file=sys.stderr)
    return 1 if warmer.failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="registry", description=__doc__)
    from registry import __version__

    p.add_argument("--version", action="version", version=f"registry {__version__}")
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

    du = sub.add_parser("du", help="bytes per namespace: as listed (logical) and as "
                                   "stored (each digest once), from the index")
    common(du)
    du.add_argument("namespace", nargs="?", help="one namespace or repository (default: all)")
    du.add_argument("--json", action="store_true", help="JSON, as GET /api/v1/usage answers")
    du.set_defaults(func=cmd_du)

    gc = sub.add_parser("gc", help="free blobs nothing references (the server must be "
                                   "stopped; online: POST /api/v1/gc or [gc] interval)")
    common(gc)
    gc.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    gc.add_argument("--grace", help="keep unreferenced blobs younger than this "
                                    "(default [gc] grace, 1h)")
    gc.add_argument("--json", action="store_true")
    gc.set_defaults(func=cmd_gc)

    sc = sub.add_parser("scrub", help="re-hash every blob; report corrupt blobs and links to "
                                      "missing ones (exit 1 when any)")
    common(sc)
    sc.add_argument("--repair", action="store_true",
                    help="move corrupt blobs to _quarantine/ so they are never served again")
    sc.add_argument("--jobs", type=int, default=4, help="blobs hashed at once (default 4)")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_scrub)

    r = sub.add_parser("reindex", help="rebuild the SQLite index from storage")
    common(r)
    r.set_defaults(func=cmd_reindex)

    sp = sub.add_parser("spack", help="Spack build caches")
    spsub = sp.add_subparsers(dest="spack_command", required=True)
    imp = spsub.add_parser("import", help="import a build cache directory "
                                          "(spack buildcache push file://DIR)")
    common(imp)
    imp.add_argument("dir", help="the directory spack pushed to")
    imp.add_argument("--cache", required=True,
                     help="the cache to import into (its OCI repository name)")
    imp.add_argument("--jobs", type=int, default=4, help="files stored at once (default 4)")
    imp.set_defaults(func=cmd_spack_import)
    ls = spsub.add_parser("list", help="list the specs of every build cache (or one)")
    common(ls)
    ls.add_argument("--cache", help="only this cache (its OCI repository name)")
    ls.add_argument("--name", help="only specs of this package")
    ls.add_argument("--target", help="only specs built for this target (e.g. x86_64_v3)")
    ls.add_argument("--json", action="store_true", help="JSON, as the API answers")
    ls.set_defaults(func=cmd_spack_list)

    ca = sub.add_parser("cache", help="node cache tools")
    casub = ca.add_subparsers(dest="cache_command", required=True)
    st = casub.add_parser("stats", help="what the node cache did: hits, misses, coalesced "
                                        "requests, bytes from upstream and served")
    common(st)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_cache_stats)
    wa = casub.add_parser("warm", help="pull images (or a Spack environment's binaries) "
                                       "through a running node cache before a job")
    common(wa)
    wa.add_argument("refs", nargs="*", metavar="REF", help="repo[:tag][@digest]")
    wa.add_argument("--url", help="the node cache (default: from the config's listen)")
    wa.add_argument("--cafile", help="CA bundle for an https node cache")
    wa.add_argument("--jobs", type=int, default=8, help="blobs fetched at once (default 8)")
    wa.add_argument("--platform", action="append", metavar="OS/ARCH[/VARIANT]",
                    help="only these platforms of image indexes (repeatable; default all)")
    wa.add_argument("--spack-lock", help="a spack.lock: warm every binary it names")
    wa.add_argument("--spack-cache", help="with --spack-lock: the build cache's OCI "
                                          "repository")
    wa.set_defaults(func=cmd_cache_warm)

    from registry.cli_advisories import add_parsers as add_advisories_parsers
    from registry.cli_auth import add_parsers
    from registry.cli_requirements import add_parsers as add_requirements_parsers
    from registry.cli_scan import add_parsers as add_scan_parsers
    from registry.cli_search import add_parsers as add_search_parsers
    from registry.cli_trust import add_parsers as add_trust_parsers
    from registry.cli_verify import add_parsers as add_verify_parsers

    add_parsers(sub, common, _load)
    add_trust_parsers(sub, common, _load, _store)
    add_verify_parsers(sub, common, _load)
    add_requirements_parsers(sub, common, _load, _store)
    add_scan_parsers(sub, common, _load, _store)
    add_search_parsers(sub, common, _load, _store)
    add_advisories_parsers(sub, common, _load)
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
