"""OSV advisories as typed records: one document validated field by field.

The OSV schema (ossf/osv-schema, docs/schema.md): `id`, `modified`, `withdrawn`,
`aliases`, `summary`, `severity` ([{type, score}]), `affected` ([{package: {ecosystem,
name, purl}, ranges: [{type, repo, events}], versions, severity, ecosystem_specific,
database_specific}]), `database_specific`. Advisories come from outside (an OSV export
someone copied onto the machine), so every field is checked for its type and bounded in
size; a document that does not hold is refused with the reason, never half-kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# An advisory id as the OSV databases spell them (GHSA-..., DSA-5678-1, PYSEC-2024-1,
# ALSA-2024:1234, CVE-2024-1234, RUSTSEC-2024-0001, ...).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
MAX_AFFECTED = 10_000
MAX_EVENTS = 10_000
MAX_VERSIONS = 200_000
MAX_TEXT = 4096
RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


class InvalidAdvisory(ValueError):
    """A document that is not an OSV advisory this registry can use, and why."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a range: `introduced`, `fixed`, `last_affected` or `limit`."""

    kind: str
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    """A range of affected versions: ECOSYSTEM or SEMVER (versions), GIT (commits of `repo`)."""

    type: str
    events: tuple[Event, ...]
    repo: str = ""


@dataclass(frozen=True, slots=True)
class Affected:
    """One affected package of an advisory (or, for GIT records, a repository)."""

    ecosystem: str
    name: str
    purl: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    severity: tuple[tuple[str, str], ...] = ()
    rating: str = ""  # ecosystem_specific / database_specific severity word


@dataclass(frozen=True, slots=True)
class Advisory:
    """An OSV advisory, as matching needs it."""

    id: str
    modified: str  # ISO 8601, UTC, comparable as text
    withdrawn: str
    aliases: tuple[str, ...]
    summary: str
    severity: tuple[tuple[str, str], ...]  # (type, score): CVSS_V3 / CVSS_V4 vectors
    rating: str  # database_specific severity word ("HIGH", "moderate", ...)
    affected: tuple[Affected, ...] = field(default=())


def _str(doc: dict[str, Any], key: str, where: str, required: bool = False,
         limit: int = MAX_TEXT) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise InvalidAdvisory(f"{where}{key}: missing")
        return ""
    if not isinstance(value, str):
        raise InvalidAdvisory(f"{where}{key}: expected a string")
    if len(value) > limit:
        raise InvalidAdvisory(f"{where}{key}: longer than {limit} characters")
    return value


def _list(doc: dict[str, Any], key: str, where: str, limit: int) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidAdvisory(f"{where}{key}: expected a list")
    if len(value) > limit:
        raise InvalidAdvisory(f"{where}{key}: more than {limit} entries")
    return value


def _dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidAdvisory(f"{where}: expected an object")
    return value


def timestamp(value: str, where: str) -> str:
    """An RFC 3339 time as UTC ISO text (so that text order is time order)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidAdvisory(f"{where}: not an RFC 3339 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def _strings(items: list[Any], where: str, limit: int = MAX_TEXT) -> tuple[str, ...]:
    if not all(isinstance(item, str) and len(item) <= limit for item in items):
        raise InvalidAdvisory(f"{where}: expected strings of at most {limit} characters")
    return tuple(items)


def _severity(doc: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    out = []
    for i, item in enumerate(_list(doc, "severity", where, 16)):
        item = _dict(item, f"{where}severity[{i}]")
        out.append((_str(item, "type", f"{where}severity[{i}].", True, 32),
                    _str(item, "score", f"{where}severity[{i}].", True, 512)))
    return tuple(out)


def _rating(*docs: Any) -> str:
    """The severity word a database puts in its own fields (GHSA's
    database_specific.severity, Ubuntu's and Red Hat's ecosystem_specific), if any."""
    for doc in docs:
        if isinstance(doc, dict):
            value = doc.get("severity")
            if isinstance(value, str) and len(value) <= 32:
                return value
    return ""


def _range(doc: Any, where: str) -> Range:
    doc = _dict(doc, where)
    kind = _str(doc, "type", f"{where}.", True, 16)
    if kind not in RANGE_TYPES:
        raise InvalidAdvisory(f"{where}.type: not one of {', '.join(RANGE_TYPES)}")
    events = []
    for i, event in enumerate(_list(doc, "events", f"{where}.", MAX_EVENTS)):
        event = _dict(event, f"{where}.events[{i}]")
        if len(event) != 1:
            raise InvalidAdvisory(f"{where}.events[{i}]: expected exactly one of "
                                  f"{', '.join(EVENT_KINDS)}")
        ((key, value),) = event.items()
        if key not in EVENT_KINDS or not isinstance(value, str) or not value \
                or len(value) > 256:
            raise InvalidAdvisory(f"{where}.events[{i}]: expected one of "
                                  f"{', '.join(EVENT_KINDS)} with a version")
        events.append(Event(key, value))
    if not any(e.kind == "introduced" for e in events):
        raise InvalidAdvisory(f"{where}.events: no introduced event")
    repo = _str(doc, "repo", f"{where}.", kind == "GIT", 1024)
    return Range(kind, tuple(events), repo)


def _affected(doc: Any, where: str) -> Affected:
    doc = _dict(doc, where)
    package = _dict(doc.get("package"), f"{where}.package")
    ranges = tuple(_range(r, f"{where}.ranges[{i}]")
                   for i, r in enumerate(_list(doc, "ranges", f"{where}.", 1024)))
    versions = _strings(_list(doc, "versions", f"{where}.", MAX_VERSIONS),
                        f"{where}.versions", 256)
    ecosystem = _str(package, "ecosystem", f"{where}.package.", False, 128)
    name = _str(package, "name", f"{where}.package.", False, 512)
    if bool(ecosystem) != bool(name):
        raise InvalidAdvisory(f"{where}.package: needs both ecosystem and name")
    if not ecosystem and not any(r.type == "GIT" for r in ranges):
        raise InvalidAdvisory(f"{where}: neither a package nor a GIT range")
    return Affected(ecosystem, name, _str(package, "purl", f"{where}.package.", False, 1024),
                    ranges, versions, _severity(doc, f"{where}."),
                    _rating(doc.get("ecosystem_specific"), doc.get("database_specific")))


def parse(doc: Any) -> Advisory:
    """The advisory `doc` (decoded JSON) describes; InvalidAdvisory saying why not."""
    if not isinstance(doc, dict):
        raise InvalidAdvisory("not a JSON object")
    ident = _str(doc, "id", "", True, 128)
    if not _ID.fullmatch(ident):
        raise InvalidAdvisory("id: not an advisory id")
    modified = timestamp(_str(doc, "modified", "", True, 64), "modified")
    withdrawn = _str(doc, "withdrawn", "", False, 64)
    if withdrawn:
        withdrawn = timestamp(withdrawn, "withdrawn")
    aliases = _strings(_list(doc, "aliases", "", 256), "aliases", 128)
    affected = tuple(_affected(a, f"affected[{i}]")
                     for i, a in enumerate(_list(doc, "affected", "", MAX_AFFECTED)))
    return Advisory(ident, modified, withdrawn, aliases,
                    _str(doc, "summary", "", False, MAX_TEXT), _severity(doc, ""),
                    _rating(doc.get("database_specific")), affected)
