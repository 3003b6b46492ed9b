"""`registry search [QUERY]`: the search of `GET /api/v1/search`, read from the store's
index directly (as `registry spack list` does), with the same filters, as a table or
`--json`. The Spack caches' specs are brought up to the store first; the manifests'
documents are as current as the index (`registry reindex` rebuilds them)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from registry.config import Config
from registry.index.scans import SEVERITIES

Store = Callable[[Config], Any]  # cli._store


def _query(args: argparse.Namespace) -> Any:
    from registry.api.search_api import arch_targets, fitting
    from registry.core.search import N_MAX, BadSearch, SearchQuery, terms

    name = version = None
    if args.spack:
        name, _, version = args.spack.partition("@")
    labels = []
    for item in args.label or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise BadSearch("--label must be KEY=VALUE")
        labels.append((key, value))
    if not 1 <= args.n <= N_MAX:
        raise BadSearch(f"-n must be between 1 and {N_MAX}")
    targets = None
    if args.target:
        targets = fitting(args.target) if args.fits else (args.target,)
    return SearchQuery(terms=terms(" ".join(args.query)), kind=args.kind, os=args.os,
                       arch=args.arch, arch_targets=arch_targets(args.arch) if args.arch
                       else None, targets=targets, labels=tuple(labels), spack_name=name,
                       spack_version=version or None, signed=args.signed,
                       severity=args.severity, scanned=args.scanned, limit=args.n)


def cmd_search(args: argparse.Namespace, load: Callable[[argparse.Namespace], Config],
               store: Store) -> int:
    from registry.core.areas import SpackArea
    from registry.core.search import BadSearch, Search
    from registry.spack import catalog
    from registry.spack.service import SpackCaches

    try:
        query = _query(args)
    except BadSearch as exc:
        print(f"search: {exc.message}", file=sys.stderr)
        return 2
    config = load(args)

    async def run() -> list[dict[str, Any]]:
        async with store(config) as (driver, index):
            specs = catalog.SpecCatalog(index)
            await catalog.sync(SpackCaches(SpackArea(driver), sink=specs), specs)
            return (await Search(index).page(query, None)).results

    results = asyncio.run(run())
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(table(results))
    print(f"{len(results)} result{'s' * (len(results) != 1)}", file=sys.stderr)
    return 0


def _platforms(r: dict[str, Any]) -> str:
    out = []
    for p in r.get("platforms", []):
        words = [p.get(k) or "" for k in ("os", "os_release", "architecture", "variant")]
        text = "/".join(w for w in words if w)
        if p.get("target"):
            text += f" ({p['target']})" if text else p["target"]
        out.append(text)
    return ", ".join(dict.fromkeys(out))


def table(results: list[dict[str, Any]]) -> str:
    """Results as columns: kind, repository or cache, what (tag or spec), digest or hash,
    the worst vulnerability of its scan ("-": not scanned, "?": not matched yet; "-" for a
    spec, whose manifest is a result of its own), platforms."""
    rows = [("KIND", "REPOSITORY", "TAG/SPEC", "DIGEST", "SEVERITY", "PLATFORMS")]
    for r in results:
        if r["kind"] == "spack":
            what = f"{r['name']}@{r['version']}" + (f" %{r['compiler']}" if r["compiler"]
                                                    else "")
            ident = r["hash"][:7]
        else:
            what = ",".join(r["tags"]) or "-"
            ident = r["digest"][:19]
        severity = r.get("max_severity") or ("?" if r.get("scanned") else "-")
        rows.append((r["kind"], r["repository"], what, ident, severity, _platforms(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True))
                     + "  " + row[5] for row in rows)


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None],
                load: Callable[[argparse.Namespace], Config], store: Store) -> None:
    s = sub.add_parser("search", help="find images, artifacts and Spack specs by words and "
                                      "filters (as GET /api/v1/search), from the index")
    common(s)
    s.add_argument("query", nargs="*", help="words, each matched as a phrase (word*: prefix)")
    s.add_argument("--kind", choices=("image", "artifact", "spack"))
    s.add_argument("--os", help="linux, or a spec's os (ubuntu22.04)")
    s.add_argument("--arch", help="OCI architecture (amd64, arm64)")
    s.add_argument("--target", help="archspec target the build was made for (exactly)")
    s.add_argument("--fits", action="store_true",
                   help="with --target: every build that runs on a host of that target")
    s.add_argument("--label", action="append", metavar="KEY=VALUE",
                   help="a config label or annotation (repeatable: all must hold)")
    s.add_argument("--spack", metavar="NAME[@VERSION]", help="only specs of this package")
    signed = s.add_mutually_exclusive_group()
    signed.add_argument("--signed", action="store_const", const=True, dest="signed",
                        help="only manifests with a valid signature")
    signed.add_argument("--unsigned", action="store_const", const=False, dest="signed",
                        help="only manifests without one")
    s.add_argument("--severity", choices=SEVERITIES,
                   help="only manifests whose worst vulnerability is at least this level "
                        "(none: every manifest scanned and matched)")
    scanned = s.add_mutually_exclusive_group()
    scanned.add_argument("--scanned", action="store_const", const=True, dest="scanned",
                         help="only manifests with a scan result")
    scanned.add_argument("--unscanned", action="store_const", const=False, dest="scanned",
                         help="only manifests not scanned yet")
    s.add_argument("-n", type=int, default=50, help="at most this many results (default 50)")
    s.add_argument("--json", action="store_true", help="JSON, as the API's results")
    s.set_defaults(func=lambda args: cmd_search(args, load, store))
