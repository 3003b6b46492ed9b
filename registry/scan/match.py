"""Matching installed packages against the imported OSV advisories.

A package is looked up in the advisory database by its ecosystem and name (and, for
Debian, Alpine and RPM, by its source package too: Debian's and Alpine's OSV records
name source packages). An OS package is matched against the records of the release
the scan found (`Debian:12` for Debian 12, from etc/os-release). A version is affected
when an explicit `versions` list holds it, or when an ECOSYSTEM or SEMVER range holds it
in the ecosystem's own order (registry/scan/versions.py): OSV's rule, events in
version order, `introduced` opens, `fixed` closes before it, `last_affected` after it.
Spack packages go through the mapping table (registry/scan/spack_map.py): to an
ecosystem's package, or to an upstream repository whose GIT records list affected tags.
Withdrawn advisories never match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from univers import versions as uv

from registry.scan.advisories import AdvisoryDB
from registry.scan.osv import Advisory, Affected, Event, Range
from registry.scan.severity import Severity, rank, severity
from registry.scan.spack_map import SpackMap
from registry.scan.versions import (
    UnknownOrder,
    base_ecosystem,
    package_key,
    parse_version,
    release,
    repo_key,
)

# The scanner's ecosystem names for packages that are not OS packages, as OSV's.
LANGUAGES = {"pypi": "PyPI", "python": "PyPI", "npm": "npm", "cargo": "crates.io",
             "golang": "Go", "gem": "RubyGems", "maven": "Maven", "cran": "CRAN"}
OS_ECOSYSTEMS = ("deb", "apk", "rpm")


class PackageLike(Protocol):
    """What matching reads of a package (registry/scan/inventory.Package has it)."""

    @property
    def ecosystem(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PackageRef:
    """A package named by hand (`registry advisories match`, tests)."""

    ecosystem: str
    name: str
    version: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Match:
    """One advisory affecting one package."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: Severity
    fixed: str  # the first fixed version after the installed one; "" when unknown
    package: str
    version: str
    ecosystem: str  # the OSV ecosystem (or GIT repository) it was matched in

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        return out


def _in_range(ecosystem: str, version: str, rng: Range) -> tuple[bool, str]:
    """Whether `rng` holds `version`, and the fixed version that closes it (if any).
    UnknownOrder when the ecosystem cannot be ordered or a version does not parse."""
    have = parse_version(ecosystem, version, rng.type)
    # OSV's evaluation: events sorted by version, the last one at or below the
    # installed version decides (introduced "0" is before every version, None here).
    events: list[tuple[uv.Version | None, Event]] = []
    for event in rng.events:
        if event.kind == "limit":
            continue  # limits bound GIT commit walks only
        zero = event.kind == "introduced" and event.version == "0"
        events.append((None if zero else parse_version(ecosystem, event.version, rng.type),
                       event))
    events.sort(key=lambda pair: (pair[0] is not None, pair[0] or have))
    affected = False
    for at, event in events:
        if at is None:
            affected = True
        elif event.kind == "introduced" and have >= at:
            affected = True
        elif event.kind == "fixed" and have >= at:
            affected = False
        elif event.kind == "last_affected" and have > at:
            affected = False
    fixed = ""
    if affected:
        fixed = next((e.version for at, e in events
                      if e.kind == "fixed" and at is not None and at > have), "")
    return affected, fixed


def _affected_by(entry: Affected, ecosystem: str, version: str) -> tuple[bool, str]:
    if version in entry.versions:
        fixed = ""
        for rng in entry.ranges:
            if rng.type != "GIT":
                try:
                    hit, fixed = _in_range(ecosystem, version, rng)
                except UnknownOrder:
                    continue
                if hit:
                    break
        return True, fixed
    for rng in entry.ranges:
        if rng.type == "GIT":
            continue
        try:
            hit, fixed = _in_range(ecosystem, version, rng)
        except UnknownOrder:
            continue
        if hit:
            return True, fixed
    return False, ""


def _release_fits(record: str, distro: str | None) -> bool:
    """Whether a record of ecosystem `record` applies to the distribution `distro`:
    same base, and the same release (`Ubuntu:22.04:LTS` fits `Ubuntu:22.04`,
    `Red Hat:enterprise_linux:9::baseos` fits `Red Hat:9`); a record without a
    release applies to every release."""
    if distro is None or base_ecosystem(record) != base_ecosystem(distro):
        return distro is None and not release(record)
    want, have = release(distro), release(record)
    if base_ecosystem(record) == "Red Hat" and have.startswith("enterprise_linux:"):
        # Red Hat names a product stream: `Red Hat:enterprise_linux:9::appstream` is
        # RHEL 9 (EUS, SAP and other streams of a minor release are not assumed).
        have = have.split(":")[1]
    return not have or have == want or have.startswith(want + ":")


def _finding(advisory: Advisory, entry: Affected | None, fixed: str, package: str,
             version: str, where: str) -> Match:
    vectors = tuple(entry.severity if entry else ()) + advisory.severity
    words = (entry.rating if entry else "", advisory.rating)
    return Match(advisory.id, advisory.aliases, advisory.summary, severity(vectors, words),
                 fixed, package, version, where)


class Matcher:
    """Matches packages against one advisory database (and the Spack mapping table)."""

    def __init__(self, db: AdvisoryDB, spack: SpackMap | None = None) -> None:
        self.db = db
        self.spack = spack

    def _ecosystem_matches(self, ecosystem: str, names: Iterable[str], version: str,
                           package: str, distro: str | None) -> list[Match]:
        base = base_ecosystem(ecosystem)
        keys = {package_key(ecosystem, n) for n in names if n}
        out = []
        for advisory in self.db.candidates(base, keys):
            if advisory.withdrawn:
                continue
            for entry in advisory.affected:
                if (base_ecosystem(entry.ecosystem) != base
                        or package_key(entry.ecosystem, entry.name) not in keys
                        or not _release_fits(entry.ecosystem, distro)):
                    continue
                hit, fixed = _affected_by(entry, entry.ecosystem, version)
                if hit:
                    out.append(_finding(advisory, entry, fixed, package, version,
                                        entry.ecosystem))
                    break
        return out

    def _git_matches(self, repos: Iterable[str], tags: list[str], package: str,
                     version: str) -> list[Match]:
        keys = {repo_key(r) for r in repos}
        out = []
        for advisory in self.db.by_repo(keys):
            if advisory.withdrawn:
                continue
            for entry in advisory.affected:
                repo = next((r.repo for r in entry.ranges
                             if r.type == "GIT" and repo_key(r.repo) in keys), "")
                if repo and any(tag in entry.versions for tag in tags):
                    out.append(_finding(advisory, entry, "", package, version, repo))
                    break
        return out

    def match(self, package: PackageLike, distro: str | None = None) -> list[Match]:
        """The advisories affecting `package`. `distro` is the OSV ecosystem of the
        distribution the scan found (`Debian:12`); OS packages need it."""
        eco, name, version = package.ecosystem, package.name, package.version
        names = [name]
        if eco in OS_ECOSYSTEMS:
            if distro is None:
                return []  # which release's records apply is unknown
            source = package.source.split(" ")[0]
            names = [name, source] if source and source != name else [name]
            found = self._ecosystem_matches(distro, names, version, name, distro)
        elif eco == "spack":
            mapping = self.spack.lookup(name) if self.spack else None
            if mapping is None:
                return []
            found = []
            if mapping.ecosystem:
                found += self._ecosystem_matches(mapping.ecosystem, [mapping.name], version,
                                                 name, None)
            if mapping.repos:
                seen = {m.id for m in found}
                found += [m for m in self._git_matches(mapping.repos,
                                                       mapping.tag_names(version),
                                                       name, version)
                          if m.id not in seen]
        else:
            osv_eco = LANGUAGES.get(eco, eco)
            found = self._ecosystem_matches(osv_eco, names, version, name, None)
        return sorted(found, key=lambda m: (-rank(m.severity.level), m.id))


def max_severity(matches: Iterable[Match]) -> str:
    """The highest level among `matches` ("" when there are none)."""
    levels = [m.severity.level for m in matches]
    return max(levels, key=rank) if levels else ""
