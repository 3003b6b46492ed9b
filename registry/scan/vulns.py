"""A scan result's vulnerabilities: its stored inventory matched against the advisory database.

A scan result (registry/scan/results.py) keeps what was found; `Vulnerabilities` adds
what the advisories say of it: `vulnerabilities` (one per advisory and package: id,
aliases, summary, severity with CVSS score and vector, fixed version, package, version,
purl), `max_severity`, and `advisories` (the database generation matched against). A
result matched at an older generation is stale: re-matched when read, and at once by
`registry advisories import` for the results whose packages the import touched.
SQLite is blocking, so matching runs in a worker thread, on a connection of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from registry.core.grammar import Digest
from registry.scan.advisories import AdvisoryDB, ImportReport
from registry.scan.match import LANGUAGES, OS_ECOSYSTEMS, Matcher, PackageRef, max_severity
from registry.scan.results import ScanResults
from registry.scan.spack_map import SpackMap
from registry.scan.versions import base_ecosystem, package_key, repo_key

# Told of each result a re-match stored.
Written = Callable[[Digest, dict[str, Any]], Awaitable[None]]


def _packages(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in doc.get("packages") or ():
        if isinstance(p, dict) and all(isinstance(p.get(k), str)
                                       for k in ("ecosystem", "name", "version")):
            yield p


def _distro(doc: dict[str, Any]) -> str | None:
    distro = doc.get("distro")
    value = distro.get("osv_ecosystem") if isinstance(distro, dict) else None
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Found:
    """One vulnerability of a result, as a blocking policy reads it (trust.seams.Finding)."""

    id: str
    aliases: tuple[str, ...]
    level: str


def found_in(doc: dict[str, Any]) -> list[Found]:
    """The vulnerabilities a stored result lists (none when it was never matched)."""
    out = []
    for v in doc.get("vulnerabilities") or ():
        if not isinstance(v, dict) or not isinstance(v.get("id"), str):
            continue
        severity = v.get("severity")
        level = severity.get("level") if isinstance(severity, dict) else None
        aliases = tuple(a for a in v.get("aliases") or () if isinstance(a, str))
        out.append(Found(v["id"], aliases, level if isinstance(level, str) else "unknown"))
    return out


class Vulnerabilities:
    """Matches stored scan results against the advisory database at `path`."""

    def __init__(self, path: str, spack: SpackMap) -> None:
        self.path = path
        self.spack = spack

    def generation(self) -> int:
        """The database's generation (blocking: call in a thread)."""
        with AdvisoryDB(self.path) as db:
            return db.generation

    def annotate_sync(self, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc` with its vulnerabilities as the database says now (blocking)."""
        distro = _distro(doc)
        found, entries = [], []
        with AdvisoryDB(self.path) as db:
            matcher = Matcher(db, self.spack)
            for p in _packages(doc):
                ref = PackageRef(p["ecosystem"], p["name"], p["version"],
                                 p.get("source") or "")
                for m in matcher.match(ref, distro):
                    found.append(m)
                    entries.append({**m.to_json(), "purl": p.get("purl") or ""})
            generation = db.generation
        return {**doc, "vulnerabilities": entries, "max_severity": max_severity(found),
                "advisories": {"generation": generation}}

    async def annotate(self, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc` with its vulnerabilities (in a worker thread)."""
        return await asyncio.to_thread(self.annotate_sync, doc)

    @staticmethod
    def stale(doc: dict[str, Any], generation: int) -> bool:
        """Whether `doc` was matched before the database's `generation`."""
        matched = doc.get("advisories")
        return not isinstance(matched, dict) or matched.get("generation") != generation

    def touched(self, doc: dict[str, Any], report: ImportReport) -> bool:
        """Whether the import `report` changed advisories of a package of `doc`."""
        distro = _distro(doc)
        for p in _packages(doc):
            eco, name = p["ecosystem"], p["name"]
            if eco in OS_ECOSYSTEMS:
                if distro is None:
                    continue
                base = base_ecosystem(distro)
                names = {name, (p.get("source") or name).split(" ")[0]}
                if any((base, package_key(distro, n)) in report.packages for n in names):
                    return True
            elif eco == "spack":
                mapping = self.spack.lookup(name)
                if mapping is None:
                    continue
                if mapping.ecosystem and (base_ecosystem(mapping.ecosystem),
                                          package_key(mapping.ecosystem, mapping.name)) \
                        in report.packages:
                    return True
                if any(repo_key(r) in report.repos for r in mapping.repos):
                    return True
            else:
                osv = LANGUAGES.get(eco, eco)
                if (base_ecosystem(osv), package_key(osv, name)) in report.packages:
                    return True
        return False


async def rematch(results: ScanResults, vulns: Vulnerabilities, report: ImportReport,
                  written: Written | None = None) -> int:
    """Match again, and store, every result with a package whose advisories the import
    `report` changed; how many. (The others are re-matched when next read.) `written` is
    told of each result stored (its summary goes to the index)."""
    count = 0
    async for digest in results.digests():
        doc = await results.get(digest)
        if doc is not None and vulns.touched(doc, report):
            doc = await vulns.annotate(doc)
            await results.write(digest, doc)
            if written is not None:
                await written(digest, doc)
            count += 1
    return count
