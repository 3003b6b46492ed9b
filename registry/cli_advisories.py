"""`registry advisories import DIR|ZIP` and `registry advisories match`: the scan room's
OSV advisories from the command line. Imports work offline (an OSV export copied onto
the machine) into the advisory database, `[scan] advisories` (default: beside the index)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from registry.config import Config

if TYPE_CHECKING:
    from registry.scan.advisories import ImportReport


def _rematch(config: Config, report: ImportReport) -> int:
    """Re-match the stored scan results the import touched (through the store), each
    summary written to the index as its result is (search shows it at once)."""
    from registry.core.areas import ScanArea
    from registry.index.db import Index
    from registry.scan import spack_map, summary
    from registry.scan.results import ScanResults
    from registry.scan.vulns import Vulnerabilities, rematch
    from registry.storage import create_driver

    vulns = Vulnerabilities(config.scan.advisories, spack_map.load(config.scan.spack_map))

    async def run() -> int:
        driver = create_driver(config.storage)
        index = Index(config.index.path)
        await index.open()
        try:
            return await rematch(ScanResults(ScanArea(driver).results()), vulns, report,
                                 lambda d, doc: index.apply([summary.seen(d, doc)]))
        finally:
            await driver.close()
            await index.close()

    return asyncio.run(run())


def cmd_import(args: argparse.Namespace, load: Callable[[argparse.Namespace], Config]) -> int:
    from registry.scan.advisories import AdvisoryDB, import_path

    config = load(args)
    with AdvisoryDB(config.scan.advisories) as db:
        try:
            report = import_path(db, args.source)
        except ValueError as exc:
            print(f"advisories: {exc}", file=sys.stderr)
            return 2
        total = db.count()
    rematched = 0
    if report.changed:
        try:
            rematched = _rematch(config, report)
        except Exception as exc:  # the import stands; results are re-matched when read
            print(f"advisories: stored scan results not re-matched now: {exc}",
                  file=sys.stderr)
    rejected = sum(report.rejected.values())
    if args.json:
        print(json.dumps({"imported": report.imported, "updated": report.updated,
                          "unchanged": report.unchanged, "rejected": dict(report.rejected),
                          "stopped": report.stopped, "advisories": total,
                          "rematched": rematched}, indent=1))
    else:
        print(f"imported {report.imported}, updated {report.updated}, unchanged "
              f"{report.unchanged}, rejected {rejected}; {total} advisories in "
              f"{config.scan.advisories}; {rematched} scan results re-matched")
        for reason, n in report.rejected.most_common():
            print(f"  rejected {n}: {reason} (e.g. {report.examples[reason]})")
    if report.stopped:
        print(f"advisories: import refused, nothing kept: {report.stopped}", file=sys.stderr)
        return 1
    return 0


def cmd_match(args: argparse.Namespace, load: Callable[[argparse.Namespace], Config]) -> int:
    from registry.scan import spack_map
    from registry.scan.advisories import AdvisoryDB
    from registry.scan.match import Matcher, PackageRef

    config = load(args)
    try:
        table = spack_map.load(config.scan.spack_map)
    except spack_map.MapError as exc:
        print(f"advisories: {exc}", file=sys.stderr)
        return 2
    package = PackageRef(args.ecosystem, args.name, args.version, args.source or args.name)
    with AdvisoryDB(config.scan.advisories) as db:
        found = Matcher(db, table).match(package, args.distro)
    if args.json:
        print(json.dumps([m.to_json() for m in found], indent=1))
    else:
        for m in found:
            print(f"{m.id}\t{m.severity.level}\t{m.fixed or '-'}\t{','.join(m.aliases)}\t"
                  f"{m.summary}")
    return 1 if found else 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: Callable[[argparse.ArgumentParser], None],
                load: Callable[[argparse.Namespace], Config]) -> None:
    ad = sub.add_parser("advisories", help="OSV advisories the scanner matches against")
    adsub = ad.add_subparsers(dest="advisories_command", required=True)
    imp = adsub.add_parser("import", help="import OSV advisories: a directory of JSON "
                                          "documents or an OSV export zip (all.zip)")
    common(imp)
    imp.add_argument("source", help="DIR or ZIP")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=lambda args: cmd_import(args, load))
    m = adsub.add_parser("match", help="the advisories affecting one package "
                                       "(exit 1 when any)")
    common(m)
    m.add_argument("ecosystem", help="deb, apk, rpm, pypi, spack or an OSV ecosystem")
    m.add_argument("name")
    m.add_argument("version")
    m.add_argument("--source", help="the source package (deb, apk, rpm)")
    m.add_argument("--distro", help="the distribution as OSV names it (Debian:12, "
                                    "Alpine:v3.19); OS packages need it")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=lambda args: cmd_match(args, load))
