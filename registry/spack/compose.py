"""Which cached builds an image composed from a build cache holds: each requested
spec resolved against the cache's records (spack.wanted matches name, versions,
variants and a hash prefix; arch.ordered ranks the builds that fit a target), then
the closure of their link and run dependencies, each spec once, dependencies before
their dependents.

`resolve` reads only what the request names, never the whole cache: the catalog's
rows of each requested name (a page at a time, narrowed by hash prefix and
version), the records of those rows (kept as their root nodes only), then the
chosen roots' records and those of their DAGs' nodes, looked up by hash in
batches. Memory and time follow the builds of the named packages and the size of
the closure, not the number of specs in the cache.

The same request gives the same closure in the same order, whatever order the specs
were named in: the chosen roots are taken by (name, version, hash), each root's
dependencies in the post-order spack's OCI push uses (SpecDoc.runtime_deps).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from registry.arch.fit import target_fits
from registry.arch.host import Candidate, Host
from registry.arch.ordered import rank_in_order
from registry.arch.platforms import PlatformError, known_target
from registry.core.errors import RegistryError
from registry.spack.catalog import SpecCatalog
from registry.spack.service import SpackCaches
from registry.spack.specs import Node, SpecRecord
from registry.spack.versions import InvalidVersion, version_key
from registry.spack.wanted import Wanted


class SpecUnknown(RegistryError):
    code, status, message = "SPEC_UNKNOWN", 404, "no cached build matches the spec"


class SpecDoesNotFit(RegistryError):
    code, status, message = "SPEC_DOES_NOT_FIT", 409, "no cached build fits the target"


@dataclass(frozen=True)
class Closure:
    """The roots chosen for the request and every record the image holds, in order."""

    roots: tuple[SpecRecord, ...]
    records: tuple[SpecRecord, ...]


ROWS_PAGE = 500  # catalog rows per read when a name has many builds


class Built(Protocol):
    """What choosing a build reads of one: its hash and its root node."""

    @property
    def hash(self) -> str: ...

    @property
    def root(self) -> Node: ...


B = TypeVar("B", bound=Built)


@dataclass(frozen=True)
class Build:
    """A candidate build kept while choosing: the root node, not the whole DAG."""

    hash: str
    root: Node


def _label(record: Built) -> str:
    root = record.root
    return f"{root.name}@{root.version} /{root.hash[:7]} ({root.target or 'no target'})"


def _version(record: Built) -> tuple:
    try:
        return version_key(record.root.version)
    except InvalidVersion:
        return ((), ())


def _depth(record: Built) -> int:
    try:
        return len(known_target(record.root.target).ancestors)
    except PlatformError:
        return 1 << 10  # an unknown target is the least portable


def choose(wanted: Wanted, records: Iterable[B], target: str | None) -> B:
    """The build of `wanted` the image takes: with a target, the best that fits it
    (arch.ordered: most specific target, then newest version); without, the newest
    version, then the most generic target (it runs on the most hosts), then the hash."""
    matching = [r for r in records if wanted.matches(r.root)]
    if not matching:
        raise SpecUnknown(f"no cached build matches {wanted.text!r}", {"spec": wanted.text})
    if target is None:
        newest = max(_version(r) for r in matching)
        return min((r for r in matching if _version(r) == newest),
                   key=lambda r: (_depth(r), r.hash))
    matching.sort(key=lambda r: (_version(r), r.hash), reverse=True)  # newest first
    by_hash = {r.hash: r for r in matching}
    verdicts = rank_in_order((Candidate(r.hash, r.root.os, r.root.target) for r in matching),
                             Host(os="", target=target), any_os=True)
    if not verdicts[0].fits:
        raise SpecDoesNotFit(
            f"no cached build of {wanted.text!r} fits {target}",
            {"spec": wanted.text, "target": target,
             "candidates": [{"build": _label(by_hash[v.candidate.digest]), "reason": v.reason}
                            for v in verdicts[:32]]})
    return by_hash[verdicts[0].candidate.digest]


def closure(roots: Iterable[SpecRecord], held: dict[str, SpecRecord],
            target: str | None) -> Closure:
    """Every record the image of `roots` needs, dependencies first; SpecUnknown when
    the cache lacks a dependency, SpecDoesNotFit when one does not run on `target`."""
    chosen = sorted({r.hash: r for r in roots}.values(),
                    key=lambda r: (r.root.name, _version(r), r.hash))
    seen: set[str] = set()
    out: list[SpecRecord] = []
    for root in chosen:
        for node in [*root.spec.runtime_deps(), root.root]:
            if node.hash in seen:
                continue
            seen.add(node.hash)
            record = held.get(node.hash)
            if record is None:
                raise SpecUnknown(
                    f"{node.name}@{node.version} /{node.hash}, a dependency of "
                    f"{_label(root)}, is not in the cache",
                    {"spec": f"{root.root.name}/{root.hash}", "missing": node.hash})
            if target is not None:
                fits, reason = _fits(record, target)
                if not fits:
                    raise SpecDoesNotFit(
                        f"{_label(record)}, needed by {_label(root)}, does not run on "
                        f"{target}: {reason}",
                        {"spec": f"{root.root.name}/{root.hash}", "dependency": record.hash,
                         "target": target, "reason": reason})
            out.append(record)
    return Closure(tuple(chosen), tuple(out))


def _fits(record: SpecRecord, target: str) -> tuple[bool, str]:
    try:
        return target_fits(record.root.target, target)
    except PlatformError:
        return False, f"built for {record.root.target[:64]!r}, a target archspec does not know"


async def candidates(wanted: Wanted, cache: str, caches: SpackCaches,
                     catalog: SpecCatalog) -> list[Build]:
    """The builds of `cache` that `wanted` matches, by hash: the catalog's rows of
    its name (and hash prefix) whose version it accepts, then each row's record
    matched whole (variants), read a page at a time."""
    out: list[Build] = []
    after: tuple[str, ...] | None = None
    while True:
        rows = await catalog.specs(cache, name=wanted.name, after=after, limit=ROWS_PAGE,
                                   hash_prefix=wanted.hash_prefix or None)
        hashes = [r.hash for r in rows if wanted.query.matches(r.version)]
        async for record in caches.records_of(cache, hashes):
            if wanted.matches(record.root):
                out.append(Build(record.hash, record.root))
        if len(rows) < ROWS_PAGE:
            return sorted(out, key=lambda b: b.hash)
        after = (rows[-1].name, rows[-1].hash)


async def resolve(wanted: Iterable[Wanted], target: str | None, cache: str,
                  caches: SpackCaches, catalog: SpecCatalog) -> Closure:
    """`closure` of the builds `choose` takes for `wanted` in `cache`, reading only
    the named packages' builds and the closure's records (see the module docstring)."""
    chosen: list[tuple[Wanted, Build]] = []
    for w in wanted:
        chosen.append((w, choose(w, await candidates(w, cache, caches, catalog), target)))
    roots = {r.hash: r async for r in caches.records_of(cache, {b.hash for _, b in chosen})}
    for w, build in chosen:  # removed since it was chosen
        if build.hash not in roots:
            raise SpecUnknown(f"no cached build matches {w.text!r}", {"spec": w.text})
    needed = {n.hash for r in roots.values() for n in r.spec.runtime_deps()} - set(roots)
    held = dict(roots)
    async for record in caches.records_of(cache, needed):
        held[record.hash] = record
    return closure([roots[b.hash] for _, b in chosen], held, target)
