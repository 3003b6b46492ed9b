"""Typed host and candidate descriptions, and the host query string's parser.

The query string (`os=linux&arch=amd64&target=zen3&cuda=12.4&mpi=openmpi@4.1&features=a,b`)
is what the `Registry-Host` header and `/api/v1/resolve` will carry: hostile input, so
every part is bounded and validated and only HostError ever leaves the parser.
`vendor`, `kernel`, `glibc` and `pci` are facts only image-compatibility artifacts
(arch/compat.py) ask about; a host that does not state one is not judged on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from registry.arch.platforms import (
    MAX_NAME,
    PlatformError,
    family,
    generic_target,
    known_target,
)

MAX_QUERY = 1024
MAX_FEATURES = 64
_WORD = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_VERSION = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){0,3}")
_MPI = re.compile(r"([a-z][a-z0-9_\-]{0,31})(?:@(" + _VERSION.pattern + r"))?")
_KEYS = frozenset({"os", "arch", "variant", "target", "cuda", "rocm", "mpi", "features",
                   "vendor", "kernel", "glibc", "pci"})
MAX_PCI = 64
# A PCI device as vendor:device, four hex digits each (lspci -n spells them so).
_PCI = re.compile(r"([0-9a-fA-F]{4})[:.]([0-9a-fA-F]{4})")

PciDevice = tuple[str, str]  # (vendor, device), lower-case hex

Version = tuple[int, ...]


class HostError(PlatformError):
    """A host description (query string or one of its values) that is not valid."""


def dotted(version: Version) -> str:
    """A version tuple written back as "12.4"."""
    return ".".join(map(str, version))


def parse_version(text: str, kind: str = "version") -> Version:
    """A dotted version such as "12.4" as a tuple of ints; HostError when it is not one."""
    if not isinstance(text, str) or _VERSION.fullmatch(text) is None:
        raise HostError(f"{kind} {str(text)[:MAX_NAME]!r} is not a dotted version")
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class Mpi:
    """An MPI flavour and an optional version prefix, as Spack spells `openmpi@4.1`."""

    flavour: str
    version: Version = ()

    @classmethod
    def parse(cls, text: str) -> Mpi:
        match = _MPI.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise HostError(f"mpi {str(text)[:MAX_NAME]!r} is not flavour[@version]")
        version = parse_version(match.group(2), "mpi version") if match.group(2) else ()
        return cls(match.group(1), version)

    def __str__(self) -> str:
        return self.flavour + ("@" + dotted(self.version) if self.version else "")


@dataclass(frozen=True)
class Host:
    """What a host offers: its OS, archspec target, CUDA driver, ROCm, MPI and CPU features."""

    os: str = "linux"
    target: str = "x86_64"
    cuda: Version | None = None
    rocm: Version | None = None
    mpi: Mpi | None = None
    features: frozenset[str] = frozenset()
    # Stated only when known; None (or empty pci) means "not stated", never "none".
    vendor: str | None = None  # CPU vendor as cpuid spells it: GenuineIntel, AuthenticAMD
    kernel: Version | None = None
    glibc: Version | None = None
    pci: frozenset[PciDevice] = frozenset()


@dataclass(frozen=True)
class Candidate:
    """One build on offer (a child manifest): what it needs of a host."""

    digest: str
    os: str
    target: str
    cuda: Version | None = None
    rocm: Version | None = None
    mpi: Mpi | None = None


def parse_host(query: str) -> Host:
    """Parse a host query string into a Host; HostError on anything malformed.

    `target` wins over `arch`/`variant`; with neither, the host is generic x86_64."""
    if not isinstance(query, str) or len(query) > MAX_QUERY:
        raise HostError("host description is missing or too long")
    values: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        key, sep, raw = pair.partition("=")
        if not sep or key not in _KEYS:
            raise HostError(f"unknown host key {key[:MAX_NAME]!r}")
        if key in values:
            raise HostError(f"host key {key!r} given twice")
        value = unquote_plus(raw)
        if not value or len(value) > 512:
            raise HostError(f"host key {key!r} has no usable value")
        values[key] = value
    os_name = values.get("os", "linux")
    if _WORD.fullmatch(os_name) is None:
        raise HostError("os is not a plain word")
    try:
        generic = generic_target(values.get("arch", "amd64"), values.get("variant", ""))
        target = known_target(values["target"]).name if "target" in values else generic
    except PlatformError as exc:
        raise HostError(str(exc)) from None
    if family(target) != family(generic):
        raise HostError(f"target {target!r} is not a {values.get('arch', 'amd64')} target")
    features: frozenset[str] = frozenset()
    if "features" in values:
        names = values["features"].split(",")
        if len(names) > MAX_FEATURES or any(_WORD.fullmatch(n) is None for n in names):
            raise HostError("features is not a short comma-separated list of words")
        features = frozenset(names)
    vendor = values.get("vendor")
    if vendor is not None and _WORD.fullmatch(vendor) is None:
        raise HostError("vendor is not a plain word")
    return Host(
        os=os_name,
        target=target,
        cuda=parse_version(values["cuda"], "cuda") if "cuda" in values else None,
        rocm=parse_version(values["rocm"], "rocm") if "rocm" in values else None,
        mpi=Mpi.parse(values["mpi"]) if "mpi" in values else None,
        features=features,
        vendor=vendor,
        kernel=parse_version(values["kernel"], "kernel") if "kernel" in values else None,
        glibc=parse_version(values["glibc"], "glibc") if "glibc" in values else None,
        pci=_pci(values["pci"]) if "pci" in values else frozenset(),
    )


def host_query(host: Host, with_features: bool = False) -> str:
    """`host` written back as the query string parse_host reads (features only when
    asked: a detected CPU has more than a query may carry)."""
    parts = [f"os={host.os}", f"target={host.target}"]
    for key, version in (("cuda", host.cuda), ("rocm", host.rocm)):
        if version is not None:
            parts.append(f"{key}={dotted(version)}")
    if host.mpi is not None:
        parts.append(f"mpi={host.mpi}")
    if host.vendor is not None:
        parts.append(f"vendor={host.vendor}")
    for key, version in (("kernel", host.kernel), ("glibc", host.glibc)):
        if version is not None:
            parts.append(f"{key}={dotted(version)}")
    if host.pci:
        parts.append("pci=" + ",".join(f"{v}:{d}" for v, d in sorted(host.pci)))
    if with_features and host.features:
        parts.append("features=" + ",".join(sorted(host.features)))
    return "&".join(parts)


def _pci(text: str) -> frozenset[PciDevice]:
    """`10de:2330,15b3:101d` as {(vendor, device)}; HostError when malformed."""
    devices = set()
    entries = text.split(",")
    if len(entries) > MAX_PCI:
        raise HostError(f"pci lists more than {MAX_PCI} devices")
    for entry in entries:
        match = _PCI.fullmatch(entry)
        if match is None:
            raise HostError(f"pci device {entry[:MAX_NAME]!r} is not vendor:device in hex")
        devices.add((match.group(1).lower(), match.group(2).lower()))
    return frozenset(devices)
