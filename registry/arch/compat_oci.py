"""The OCI image-compatibility working group's spec (artifactType
`application/vnd.oci.image-compatibility.v1`, spec layer
`application/vnd.oci.image-compatibility.spec.v1+json`, Proposal H's flat format):
`{"compatibilities": [set, ...]}`, each set a flat object of string feature fields
named by OCI feature labels, an optional integer `compatibility-score` and an
optional `annotation`. A host is compatible when any set holds; among those that
hold, the highest score is the best.

Fields checked against a host: `oci.cpu.vendor`, `oci.cpu.features`,
`oci.kernel.versions`, `oci.os.glibc`, `oci.pci.devices`. Any other field is kept
and named in the reason as not checked, as the spec leaves interpreting labels to
each tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from registry.arch.compat_facts import Facts, feature_key, version_key
from registry.arch.compat_load import CompatError
from registry.arch.host import Version, dotted

MAX_SETS = 64
MAX_FIELDS = 64
MAX_LIST = 64
SCORE_KEYS = ("compatibility-score", "oci.compatibility-score")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,127}")
_VERSION = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){0,3}")
_VENDOR = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_FEATURE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_PCI = re.compile(r"([0-9a-fA-F]{4})(?:[.:]([0-9a-fA-F]{4}))?")
_INTERVAL = re.compile(r"\s*([\[(])\s*([0-9.]*)\s*,\s*([0-9.]*)\s*([\])])\s*")


@dataclass(frozen=True)
class Interval:
    """A version range as the spec writes it: `[4.19, 5.16)`; an empty bound is open."""

    low: Version | None
    low_closed: bool
    high: Version | None
    high_closed: bool

    def contains(self, version: Version) -> bool:
        width = max(len(version), len(self.low or ()), len(self.high or ()))
        v = version_key(version, width)
        if self.low is not None:
            low = version_key(self.low, width)
            if v < low or (v == low and not self.low_closed):
                return False
        if self.high is not None:
            high = version_key(self.high, width)
            if v > high or (v == high and not self.high_closed):
                return False
        return True

    def __str__(self) -> str:
        return (("[" if self.low_closed else "(") + (dotted(self.low) if self.low else "")
                + ", " + (dotted(self.high) if self.high else "")
                + ("]" if self.high_closed else ")"))


@dataclass(frozen=True)
class OciSet:
    """One compatibility set, its checked fields parsed, the others named."""

    number: int  # 1-based, as the reasons name it
    score: int
    vendors: tuple[str, ...] | None  # any of them
    features: tuple[str, ...]  # all of them, as written
    kernel: tuple[Interval, ...] | None  # any of them
    glibc: tuple[Interval, ...] | None
    pci: tuple[tuple[str, str | None], ...]  # all of them; device None: any of the vendor's
    unchecked: tuple[str, ...]
    annotation: str = ""


def _items(text: str, field: str) -> list[str]:
    """A comma-separated field (`AVX512FP16,` ends with one in the spec's examples)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise CompatError(f"{field} is empty")
    if len(items) > MAX_LIST:
        raise CompatError(f"{field} lists more than {MAX_LIST} items")
    return items


def _version(text: str, field: str) -> Version:
    if _VERSION.fullmatch(text) is None:
        raise CompatError(f"{field}: {text[:40]!r} is not a dotted version")
    return tuple(int(p) for p in text.split("."))


def parse_intervals(text: str, field: str) -> tuple[Interval, ...]:
    """`[4.19, 5.16)` or several such separated by commas; a bare version is exact."""
    found: list[Interval] = []
    rest = text.strip()
    while rest:
        match = _INTERVAL.match(rest)
        if match is None:
            bare = rest.split(",", 1)
            version = _version(bare[0].strip(), field)
            found.append(Interval(version, True, version, True))
            rest = bare[1].strip() if len(bare) > 1 else ""
        else:
            low = _version(match.group(2), field) if match.group(2) else None
            high = _version(match.group(3), field) if match.group(3) else None
            if low is not None and high is not None and low > high:
                raise CompatError(f"{field}: {match.group(0).strip()} is an empty range")
            found.append(Interval(low, match.group(1) == "[", high, match.group(4) == "]"))
            rest = rest[match.end():].lstrip()
            if rest.startswith(","):
                rest = rest[1:].lstrip()
            elif rest:
                raise CompatError(f"{field}: ranges must be separated by commas")
        if len(found) > MAX_LIST:
            raise CompatError(f"{field} has more than {MAX_LIST} ranges")
    if not found:
        raise CompatError(f"{field} is empty")
    return tuple(found)


def _checked(field: str, value: str) -> Any:
    if field == "oci.cpu.vendor":
        vendors = _items(value, field)
        if any(_VENDOR.fullmatch(v) is None for v in vendors):
            raise CompatError(f"{field}: {value[:40]!r} is not a list of vendor names")
        return tuple(vendors)
    if field == "oci.cpu.features":
        features = _items(value, field)
        if any(_FEATURE.fullmatch(f) is None for f in features):
            raise CompatError(f"{field}: {value[:40]!r} is not a list of feature names")
        return tuple(features)
    if field in ("oci.kernel.versions", "oci.os.glibc"):
        return parse_intervals(value, field)
    if field == "oci.pci.devices":
        devices = []
        for item in _items(value, field):
            match = _PCI.fullmatch(item)
            if match is None:
                raise CompatError(f"{field}: {item[:40]!r} is not vendor.device in hex")
            devices.append((match.group(1).lower(),
                            match.group(2).lower() if match.group(2) else None))
        return tuple(devices)
    return None


_FIELDS = {"oci.cpu.vendor": "vendors", "oci.cpu.features": "features",
           "oci.kernel.versions": "kernel", "oci.os.glibc": "glibc", "oci.pci.devices": "pci"}


def _parse_set(number: int, raw: Any) -> OciSet:
    where = f"compatibilities[{number - 1}]"
    if not isinstance(raw, dict):
        raise CompatError(f"{where} is not an object")
    if len(raw) > MAX_FIELDS:
        raise CompatError(f"{where} has more than {MAX_FIELDS} fields")
    scores = [k for k in SCORE_KEYS if k in raw]
    if len(scores) > 1:
        raise CompatError(f"{where} has more than one compatibility score field")
    score = raw[scores[0]] if scores else 0
    if isinstance(score, bool) or not isinstance(score, int) or abs(score) >= 1 << 31:
        raise CompatError(f"{where}: the compatibility score is not a 32-bit integer")
    annotation = raw.get("annotation", "")
    if not isinstance(annotation, str):
        raise CompatError(f"{where}: annotation is not a string")
    parsed: dict[str, Any] = {"vendors": None, "features": (), "kernel": None, "glibc": None,
                              "pci": ()}
    unchecked = []
    for field, value in raw.items():
        if field in SCORE_KEYS or field == "annotation":
            continue
        if _LABEL.fullmatch(field) is None:
            raise CompatError(f"{where}: {field[:40]!r} is not a feature label")
        if not isinstance(value, str):
            raise CompatError(f"{where}: {field} is not a string")
        if field in _FIELDS:
            parsed[_FIELDS[field]] = _checked(field, value)
        else:
            unchecked.append(field)
    if not unchecked and all(v in (None, ()) for v in parsed.values()):
        raise CompatError(f"{where} has no compatibility feature field")
    return OciSet(number, score, unchecked=tuple(sorted(unchecked)), annotation=annotation,
                  **parsed)


def parse_oci(doc: Any) -> tuple[OciSet, ...]:
    """The sets of an OCI image-compatibility spec (a loaded tree); CompatError when
    it is not one. Unknown top-level keys are ignored, as JSON decoders do."""
    if not isinstance(doc, dict):
        raise CompatError("the spec is not an object")
    sets = doc.get("compatibilities")
    if not isinstance(sets, list) or not sets:
        raise CompatError("compatibilities is not a non-empty list")
    if len(sets) > MAX_SETS:
        raise CompatError(f"more than {MAX_SETS} compatibility sets")
    return tuple(_parse_set(n, raw) for n, raw in enumerate(sets, 1))


# -- judging a set against a host ------------------------------------------------

Check = tuple[bool, str]


def _ranges(name: str, ranges: tuple[Interval, ...], have: Version | None) -> Check:
    spelled = ", ".join(map(str, ranges))
    if have is None:
        return True, f"{name} {spelled} not checked (the host states no {name})"
    if any(r.contains(have) for r in ranges):
        return True, f"{name} {dotted(have)} in {spelled}"
    return False, f"{name} {dotted(have)} not in {spelled}"


def _checks(s: OciSet, facts: Facts) -> list[Check]:
    checks: list[Check] = []
    if s.vendors is not None:
        if facts.vendor is None:
            checks.append((True, "CPU vendor not checked (the host states none)"))
        elif facts.vendor in s.vendors:
            checks.append((True, f"CPU vendor {facts.vendor}"))
        else:
            checks.append((False, f"needs CPU vendor {' or '.join(s.vendors)}, "
                                  f"the host's is {facts.vendor}"))
    if s.features:
        missing = [f for f in s.features if feature_key(f) not in facts.cpu_features]
        checks.append((False, f"needs CPU features {', '.join(missing[:8])} not on "
                              f"{facts.target}") if missing
                      else (True, f"CPU features {', '.join(s.features[:8])}"))
    if s.kernel is not None:
        checks.append(_ranges("kernel", s.kernel, facts.kernel))
    if s.glibc is not None:
        checks.append(_ranges("glibc", s.glibc, facts.glibc))
    if s.pci:
        checks.append(_pci(s.pci, facts))
    if s.unchecked:
        checks.append((True, f"{', '.join(s.unchecked[:4])} not checked"))
    return checks


def _pci(wanted: tuple[tuple[str, str | None], ...], facts: Facts) -> Check:
    spelled = ", ".join(v + ("." + d if d else "") for v, d in wanted)
    if facts.pci is None:
        return True, f"PCI devices {spelled} not checked (the host states none)"
    def have(vendor: str, device: str | None) -> bool:
        return any(hv == vendor and (device is None or hd == device)
                   for hv, hd in facts.pci or ())

    missing = [v + ("." + d if d else "") for v, d in wanted if not have(v, d)]
    if missing:
        return False, f"needs PCI devices {', '.join(missing[:8])} not on the host"
    return True, f"PCI devices {spelled}"


def judge_oci_set(s: OciSet, facts: Facts) -> Check:
    """Whether set `s` holds on the host, with every reason (failures only when it
    does not)."""
    checks = _checks(s, facts)
    failed = [reason for ok, reason in checks if not ok]
    if failed:
        return False, "; ".join(failed)
    return True, "; ".join(reason for _, reason in checks)
