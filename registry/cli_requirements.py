"""`registry requirements REF`: what a node must offer to run a manifest, read from the
store the config names (as `GET /api/v1/requirements/REF` answers), as a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

from registry.cli_trust import parse_ref
from registry.config import Config


def _row(m: dict[str, Any]) -> list[str]:
    plat = "/".join(str(m["platform"].get(k)) for k in ("os", "architecture", "variant")
                    if m["platform"].get(k))
    if "error" in m:
        return [m["digest"][:19], plat or "-", "-", "-", "-", "-", f"error: {m['error']}"]
    memory = m["slurm"]["mem"] or "-"
    return [m["digest"][:19], plat, m["target"], m["cuda"] or "-", m["mpi"] or "-", memory,
            m["slurm"]["constraint"]]


def render(doc: dict[str, Any]) -> str:
    """The table `registry requirements` prints: one line per manifest, then its node
    labels, then the Slurm constraint any of them satisfies."""
    rows = [["DIGEST", "PLATFORM", "TARGET", "CUDA", "MPI", "MEMORY", "SLURM"]]
    rows += [_row(m) for m in doc["manifests"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
             for r in rows]
    for m in doc["manifests"]:
        if "labels" in m:
            labels = " ".join(f"{k}={v}" for k, v in m["labels"].items())
            lines.append(f"{m['digest'][:19]} labels: {labels}")
    lines.append(f"slurm --constraint='{doc['slurm']['constraint']}'")
    return "\n".join(lines)


def requirements_command(load: Callable[[argparse.Namespace], Config],
                         store: Callable[[Config], contextlib.AbstractAsyncContextManager],
                         args: argparse.Namespace) -> int:
    from registry.arch.needs import RequirementsService
    from registry.arch.resolver import Resolver
    from registry.core.builds import Builds
    from registry.core.errors import RegistryError
    from registry.core.factory import CoreSettings, build_registry
    from registry.core.grammar import Digest, is_valid_tag, validate_name
    from registry.core.hooks import NullHooks

    config = load(args)
    repo, reference = parse_ref(args.ref)

    async def run() -> dict[str, Any]:
        validate_name(repo)
        if "@" in args.ref:
            Digest.parse(reference)
        elif not is_valid_tag(reference):
            raise RegistryError(f"invalid tag {reference[:128]!r}")
        async with store(config) as (driver, index):
            reg = build_registry(driver, NullHooks(), CoreSettings.from_config(config))
            service = RequirementsService(Resolver(reg), Builds(index).of_manifest)
            return (await service.of(repo, reference)).to_json()

    try:
        doc = asyncio.run(run())
    except RegistryError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: Callable, load: Callable,
                store: Callable) -> None:
    r = sub.add_parser("requirements", help="what a node must offer to run a manifest: "
                                            "target, CPU features, CUDA, MPI, memory, as "
                                            "node labels and a Slurm constraint")
    common(r)
    r.add_argument("ref", metavar="REF", help="name:tag or name@digest")
    r.add_argument("--json", action="store_true",
                   help="JSON, as GET /api/v1/requirements/REF answers")
    r.set_defaults(func=lambda args: requirements_command(load, store, args))
