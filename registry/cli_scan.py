"""`registry scan REF`: the inventory of a manifest, as the scan worker stored it, or
scanned now (offline, through the configured store) when it was not scanned yet or
`--rescan` is given, and its vulnerabilities (matched again when the advisory database
changed since). Takes the same `--config`/`--data` as `registry serve`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from registry.cli_trust import Store, parse_ref
from registry.config import Config


def scan_command(load: Callable[[argparse.Namespace], Config], store: Store,
                 args: argparse.Namespace) -> int:
    from registry.core.errors import RegistryError

    config = load(args)
    repo, reference = parse_ref(args.ref)

    async def run() -> dict[str, Any]:
        from registry.core.areas import ScanArea
        from registry.core.factory import CoreSettings, build_registry
        from registry.core.grammar import validate_name
        from registry.core.scratch import ScratchSpace
        from registry.scan import spack_map
        from registry.scan.results import ScanResults
        from registry.scan.scanner import scan
        from registry.scan.vulns import Vulnerabilities

        validate_name(repo)
        from registry.scan import summary

        async with store(config) as (driver, index):
            reg = build_registry(driver, settings=CoreSettings(shared_store=True))
            digest = (await reg.manifests.get(repo, reference, with_body=False)).digest
            results = ScanResults(ScanArea(driver).results())
            doc = None if args.rescan else await results.get(digest)
            if doc is None:
                try:
                    scratch: str | None = ScratchSpace(driver).directory()
                except Exception:  # a store without local disk: the system's temp dir
                    scratch = None
                doc = await results.put(digest, repo, await scan(reg, repo, digest,
                                                                  scratch=scratch))
            # Matched against the advisories as they are now (kept, as the server does).
            vulns = Vulnerabilities(config.scan.advisories,
                                    spack_map.load(config.scan.spack_map))
            if vulns.stale(doc, vulns.generation()):
                doc = vulns.annotate_sync(doc)
                await results.write(digest, doc)
            await index.apply([summary.seen(digest, doc)])  # search shows it at once
            return doc

    try:
        doc = asyncio.run(run())
    except RegistryError as exc:
        detail = getattr(exc, "detail", None)
        print(f"registry: {exc}{f' {detail}' if detail else ''}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    distro = doc.get("distro") or {}
    vulnerabilities = doc.get("vulnerabilities") or []
    print(f"{repo}@{doc['digest']}: {len(doc['packages'])} packages, "
          f"{len(doc['findings'])} findings, {len(doc['errors'])} errors, "
          f"{len(vulnerabilities)} vulnerabilities"
          + (f" (max {doc['max_severity']})" if doc.get("max_severity") else "")
          + (f"; {distro.get('pretty_name') or distro.get('id')}" if distro else ""))
    for p in doc["packages"]:
        print(f"{p['ecosystem']}\t{p['name']}\t{p['version']}\t{p['source'] or '-'}\t"
              f"{p['purl']}")
    for f in doc["findings"]:
        print(f"finding\t{f['kind']}\t{f['path']}\t{f['detail']}")
    for e in doc["errors"]:
        print(f"error\t{e['layer'] or '-'}\t{e['path'] or '-'}\t{e['message']}")
    for v in vulnerabilities:
        print(f"vulnerability\t{v['id']}\t{v['severity']['level']}\t{v['package']}\t"
              f"{v['version']}\t{v['fixed'] or '-'}\t{','.join(v['aliases'])}")
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: Callable, load: Callable,
                store: Store) -> None:
    """`scan`."""
    s = sub.add_parser("scan", help="what a manifest holds: packages (dpkg, apk, rpm, "
                                     "Python, Spack), private keys, setuid files")
    common(s)
    s.add_argument("ref", help="REPO:TAG or REPO@DIGEST")
    s.add_argument("--rescan", action="store_true",
                   help="scan again now, replacing the stored result")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=lambda a: scan_command(load, store, a))
