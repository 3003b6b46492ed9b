"""Each ecosystem's own version order, through univers, and the keys advisories are filed by.

univers (aboutcode-org/univers) implements the orders the package managers use: dpkg's
(epochs, `~` before anything), apk's (suffixes, `-r` revisions), rpm's (rpmvercmp with
epochs and `~`/`^`), PEP 440 and semver; they are not written again here. An ecosystem
named with a release (`Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04:LTS`) orders versions
as its base does.
"""

from __future__ import annotations

import re
from typing import Any

from univers import versions as uv

_DEBIAN = ("Debian", "Ubuntu")
_RPM = ("Red Hat", "AlmaLinux", "Rocky Linux", "openSUSE", "SUSE", "Mageia", "openEuler")
_SEMVER = ("npm", "crates.io", "Hex", "Pub", "SwiftURL")


class UnknownOrder(ValueError):
    """Versions of an ecosystem this registry cannot order, or one that does not parse."""


def base_ecosystem(ecosystem: str) -> str:
    """`Debian:12` -> `Debian`, `Alpine:v3.19` -> `Alpine`, `PyPI` -> `PyPI`."""
    return ecosystem.split(":", 1)[0]


def release(ecosystem: str) -> str:
    """`Debian:12` -> `12`, `Ubuntu:22.04:LTS` -> `22.04:LTS`, `PyPI` -> ``."""
    return ecosystem.partition(":")[2]


def package_key(ecosystem: str, name: str) -> str:
    """The name an ecosystem compares package names by: PEP 503's normal form for PyPI,
    lower case where the ecosystem ignores case (CRAN's index, crates.io), else as is."""
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    if base in ("CRAN", "crates.io", "Packagist", "NuGet"):
        return name.lower()
    return name


def repo_key(url: str) -> str:
    """A repository URL as GIT ranges are compared: scheme, `.git` and a trailing slash
    dropped, host lower-cased (`https://GitHub.com/madler/zlib.git` -> `github.com/madler/zlib`)."""
    url = url.strip()
    url = re.sub(r"^[a-z+]+://", "", url)
    url = re.sub(r"^git@([^:/]+):", r"\1/", url)
    url = url.rstrip("/")
    if url.endswith(".git"):
        url = url[:-4]
    host, _, path = url.partition("/")
    return f"{host.lower()}/{path}" if path else host.lower()


def _apk(text: str) -> uv.Version:
    # univers orders apk versions with Gentoo's rules, which lack apk's post-release
    # suffixes _cvs, _svn, _git and _hg (apk-tools src/version.c: after no suffix,
    # before _p). As _p they keep their place after the release; their order among
    # each other and against _p (rare in one package's history) is not apk's.
    return uv.AlpineLinuxVersion(re.sub(r"_(cvs|svn|git|hg)(?=\d|-|$)", "_p", text))


def _cran(text: str) -> uv.Version:
    # CRAN versions are integers joined by `.` or `-` (R's package_version): as a
    # PEP 440 release segment they order the same.
    if not re.fullmatch(r"\d+([.-]\d+)*", text):
        raise UnknownOrder(f"{text!r} is not a CRAN version")
    return uv.PypiVersion(text.replace("-", "."))


def _order(ecosystem: str, range_type: str = "ECOSYSTEM") -> Any:
    if range_type == "SEMVER":
        return uv.SemverVersion
    base = base_ecosystem(ecosystem)
    if base in _DEBIAN:
        return uv.DebianVersion
    if base == "Alpine":
        return _apk
    if base in _RPM:
        return uv.RpmVersion
    if base == "PyPI":
        return uv.PypiVersion
    if base == "Go":
        return uv.GolangVersion
    if base in _SEMVER:
        return uv.SemverVersion
    if base == "CRAN":
        return _cran
    if base == "Maven":
        return uv.MavenVersion
    if base == "RubyGems":
        return uv.RubygemsVersion
    if base == "NuGet":
        return uv.NugetVersion
    raise UnknownOrder(f"no version order for ecosystem {ecosystem!r}")


def parse_version(ecosystem: str, text: str, range_type: str = "ECOSYSTEM") -> uv.Version:
    """`text` as a comparable version of `ecosystem` (or of semver for SEMVER ranges);
    UnknownOrder when the ecosystem has no known order or `text` does not parse."""
    order = _order(ecosystem, range_type)
    if range_type == "SEMVER" and text.startswith("v"):
        text = text[1:]
    try:
        version: uv.Version = order(text)
    except (ValueError, TypeError) as exc:
        raise UnknownOrder(f"{text!r} is not a version of {ecosystem}: {exc}") from None
    return version


def knows(ecosystem: str) -> bool:
    """Whether versions of `ecosystem` can be ordered."""
    try:
        _order(ecosystem)
    except UnknownOrder:
        return False
    return True
