"""Spack's version semantics, as far as choosing a cached build needs them: ordering
(`1.2 < 1.2.5 < 1.10`, `1.2rc1 < 1.2`, `develop` above every number) and the version
constraints of a spec such as `zlib@1.2`, `zlib@1.2:1.4`, `zlib@=1.2`, `zlib@1.2,1.4`.

As in spack (lib/spack/spack/version/version_types.py), a bare `@1.2` is the range
`1.2:1.2`, which holds 1.2.x: a range's upper bound `hi` admits every version below
the version after `hi` (1.4 -> 1.5). A query is hostile input: it is bounded, and only
InvalidVersion leaves this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.spack.specs import NAME_RE

# Versions as spack spells them (its VALID_VERSION), bounded; `=` only after the first
# character (git versions `<ref>=<version>`).
_VERSION = re.compile(r"[A-Za-z0-9_.\-][A-Za-z0-9_.=\-]{0,63}")
_SEGMENT = re.compile(r"(?:([0-9]+)|([a-zA-Z]+))[_.\-]*")
_SPEC = re.compile(rf"(?P<name>{NAME_RE.pattern})(?:@(?P<versions>[^@]*))?")
MAX_SPEC = 256
MAX_RANGES = 16
# Spack's "infinity versions", lowest first: each is above every numbered version.
INFINITY = ("stable", "nightly", "trunk", "head", "master", "main", "develop")
_PRERELEASE = {"alpha": 0, "beta": 1, "rc": 2}
FINAL = 3

# One component: (0, letters) < (1, number) < (2, rank among INFINITY), as spack orders
# them; the first item keeps numbers and strings from ever being compared.
Component = tuple[int, int | str]
Key = tuple[tuple[Component, ...], tuple[int, ...]]


class InvalidVersion(ValueError):
    """A version, version constraint or spec query spack would not accept."""


def version_key(text: str) -> Key:
    """The sort key of a concrete version, ordered as spack orders versions; a git
    version `<ref>=<version>` sorts as its `<version>`."""
    if not isinstance(text, str) or _VERSION.fullmatch(text) is None:
        raise InvalidVersion(f"{str(text)[:64]!r} is not a version")
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    segments = _SEGMENT.findall(text)
    prerelease: tuple[int, ...] = (FINAL,)
    if len(segments) >= 3 and segments[-2][1] in _PRERELEASE and segments[-1][0]:
        prerelease = (_PRERELEASE[segments[-2][1]], int(segments[-1][0]))
        segments = segments[:-2]
    elif len(segments) >= 2 and segments[-1][1] in _PRERELEASE:
        prerelease = (_PRERELEASE[segments[-1][1]],)
        segments = segments[:-1]
    release = tuple(_component(number, word) for number, word in segments)
    return release, prerelease


def _component(number: str, word: str) -> Component:
    if number:
        return (1, int(number))
    if word in INFINITY:
        return (2, INFINITY.index(word))
    return (0, word)


def _next_word(word: str) -> str:
    # Spack's _next_str: the next string of A-Z and a-z, skipping infinity versions.
    while True:
        word = word + "A" if not word or word[-1] == "z" else (
            word[:-1] + ("a" if word[-1] == "Z" else chr(ord(word[-1]) + 1)))
        if word not in INFINITY:
            return word


def _next(key: Key) -> Key:
    """The version right after `key`: the exclusive upper bound of a range ending at
    `key` (spack's _next_version), so that `:1.4` holds 1.4.x."""
    release, prerelease = key
    if prerelease[0] != FINAL:
        return release, (prerelease[0], prerelease[1] + 1 if len(prerelease) > 1 else 0)
    if not release:
        return ((0, "A"),), prerelease
    kind, value = release[-1]
    if kind == 0:
        return (*release[:-1], (0, _next_word(str(value)))), prerelease
    return (*release[:-1], (kind, int(value) + 1)), prerelease


@dataclass(frozen=True)
class Range:
    """`lo:hi` (either end open), or `=v` exactly: which concrete versions it holds."""

    lo: Key | None
    hi: Key | None  # exclusive: the version after the range's last
    exact: Key | None = None

    @classmethod
    def parse(cls, text: str) -> Range:
        if text.startswith("="):
            return cls(None, None, version_key(text[1:]))
        lo, sep, hi = text.partition(":")
        if not sep:
            hi = lo
        if not lo and not hi and not sep:
            raise InvalidVersion("an empty version")
        low = version_key(lo) if lo else None
        high = _next(version_key(hi)) if hi else None
        if low is not None and high is not None and not low < high:
            raise InvalidVersion(f"{text[:64]!r} is an empty range")
        return cls(low, high)

    def holds(self, key: Key) -> bool:
        if self.exact is not None:
            return key == self.exact
        return (self.lo is None or self.lo <= key) and (self.hi is None or key < self.hi)


@dataclass(frozen=True)
class SpecQuery:
    """A package name and the versions wanted (`zlib`, `zlib@1.2:1.4,2.0`); no
    constraint means every version."""

    name: str
    versions: tuple[Range, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> SpecQuery:
        if not isinstance(text, str) or not 0 < len(text) <= MAX_SPEC:
            raise InvalidVersion("spec is missing or too long")
        match = _SPEC.fullmatch(text)
        if match is None:
            raise InvalidVersion(f"{text[:64]!r} is not name[@versions]")
        versions = match.group("versions")
        if versions is None:
            return cls(match.group("name"), (), text)
        parts = versions.split(",")
        if len(parts) > MAX_RANGES:
            raise InvalidVersion("too many version ranges")
        return cls(match.group("name"), tuple(Range.parse(p) for p in parts), text)

    def matches(self, version: str) -> bool:
        """Whether a concrete version (a cached spec's) satisfies the query; a version
        spack would not write never does."""
        if not self.versions:
            return True
        try:
            key = version_key(version)
        except InvalidVersion:
            return False
        return any(r.holds(key) for r in self.versions)
