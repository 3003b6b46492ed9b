"""Which cached builds an image composed from a build cache holds: each requested
spec resolved against the cache's records (spack.wanted matches name, versions,
variants and a hash prefix; arch.ordered ranks the builds that fit a target), then
the closure of their link and run dependencies, each spec once, dependencies before
their dependents.

The same request gives the same closure in the same order, whatever order the specs
were named in: the chosen roots are taken by (name, version, hash), each root's
dependencies in the post-order spack's OCI push uses (SpecDoc.runtime_deps).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from registry.arch.fit import target_fits
from registry.arch.host import Candidate, Host
from registry.arch.ordered import rank_in_order
from registry.arch.platforms import PlatformError, known_target
from registry.core.errors import RegistryError
from registry.spack.specs import SpecRecord
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


def _label(record: SpecRecord) -> str:
    root = record.root
    return f"{root.name}@{root.version} /{root.hash[:7]} ({root.target or 'no target'})"


def _version(record: SpecRecord) -> tuple:
    try:
        return version_key(record.root.version)
    except InvalidVersion:
        return ((), ())


def _depth(record: SpecRecord) -> int:
    try:
        return len(known_target(record.root.target).ancestors)
    except PlatformError:
        return 1 << 10  # an unknown target is the least portable


def choose(wanted: Wanted, records: Iterable[SpecRecord], target: str | None) -> SpecRecord:
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
