"""The Spack mapping table: which OSV package or upstream repository a Spack package is.

The table ships as spack_map.toml beside this module (its header documents the form);
sites add files of the same form (`[scan] spack_map`), whose entries replace the
shipped ones of the same name.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from registry.scan.versions import package_key


class MapError(ValueError):
    """A mapping table file that does not parse, and why."""


@dataclass(frozen=True, slots=True)
class Mapping:
    """Where a Spack package's advisories are: an OSV (ecosystem, name), and/or upstream
    repositories with the tag patterns that name a version there."""

    ecosystem: str = ""
    name: str = ""
    repos: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def tag_names(self, version: str) -> list[str]:
        """The tags the patterns make of a Spack `version`."""
        out = []
        for pattern in self.tags:
            tag = (pattern.replace("{version_}", version.replace(".", "_"))
                   .replace("{version-}", version.replace(".", "-"))
                   .replace("{version}", version))
            if tag not in out:
                out.append(tag)
        return out


def _entry(where: str, doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise MapError(f"{where}: expected a table")
    entry: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("ecosystem", "name") and isinstance(value, str):
            entry[key] = value
        elif key in ("repos", "tags") and isinstance(value, list) \
                and all(isinstance(v, str) and v for v in value):
            entry[key] = tuple(value)
        else:
            raise MapError(f"{where}.{key}: expected ecosystem/name strings or "
                           "repos/tags lists of strings")
    if bool(entry.get("repos")) != bool(entry.get("tags")):
        raise MapError(f"{where}: repos and tags go together")
    if not entry.get("ecosystem") and not entry.get("repos"):
        raise MapError(f"{where}: neither an ecosystem nor repos")
    return entry


class SpackMap:
    """The merged table: per-package entries over prefix entries."""

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, Any]] = {}
        self.prefixes: dict[str, dict[str, Any]] = {}

    def add(self, text: str, origin: str) -> None:
        """Merge one TOML table (`origin` names it in errors)."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MapError(f"{origin}: not valid TOML: {exc}") from None
        for section in doc:
            if section not in ("packages", "prefixes"):
                raise MapError(f"{origin}: unknown section [{section}]")
        for section, target in (("packages", self.packages), ("prefixes", self.prefixes)):
            tables = doc.get(section, {})
            if not isinstance(tables, dict):
                raise MapError(f"{origin}: [{section}] must be a table of tables")
            for name, entry in tables.items():
                target[name] = _entry(f"{origin}: {section}.{name}", entry)

    def lookup(self, name: str) -> Mapping | None:
        """The mapping of Spack package `name`, or None when the table has none."""
        entry = self.packages.get(name)
        rest = name
        if entry is None:
            prefixes = [p for p in self.prefixes if name.startswith(p) and len(name) > len(p)]
            if not prefixes:
                return None
            prefix = max(prefixes, key=len)
            entry, rest = self.prefixes[prefix], name[len(prefix):]
        ecosystem = entry.get("ecosystem", "")
        osv_name = entry.get("name") or (package_key(ecosystem, rest) if ecosystem else "")
        return Mapping(ecosystem, osv_name, entry.get("repos", ()), entry.get("tags", ()))


def load(extra: Iterable[str] = ()) -> SpackMap:
    """The shipped table, extended by the files `extra` in order. MapError when one
    does not parse or cannot be read."""
    table = SpackMap()
    table.add(resources.files("registry.scan").joinpath("spack_map.toml").read_text(),
              "spack_map.toml")
    for path in extra:
        try:
            with open(path, encoding="utf-8") as f:
                table.add(f.read(), path)
        except OSError as exc:
            raise MapError(f"{path}: {exc.strerror}") from None
    return table
