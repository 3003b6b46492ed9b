"""What a Host can tell an image-compatibility check: its CPU vendor and features,
kernel, glibc and PCI devices, derived once from the Host (arch/host.py).

The CPU's vendor and features are always known: stated by the host or else its
archspec target's. Kernel, glibc and PCI devices are known only when the host
states them; a check about a fact the host does not state is not made (and the
reason says so), since a registry never sees the node itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.arch.host import Host, PciDevice, Version
from registry.arch.platforms import known_target

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def feature_key(name: str) -> str:
    """CPU feature names compared the way both spellings agree: archspec's
    `avx512_fp16` and NFD's cpuid `AVX512FP16` are both `AVX512FP16`."""
    return _NOT_ALNUM.sub("", name.upper())


@dataclass(frozen=True)
class Facts:
    """The facts of one host, in the shapes the checks compare."""

    target: str
    vendor: str | None  # cpuid's spelling (GenuineIntel, AuthenticAMD, ARM, ...)
    cpu_features: frozenset[str]  # feature_key()s
    kernel: Version | None
    glibc: Version | None
    pci: frozenset[PciDevice] | None  # None: not stated

    @classmethod
    def of(cls, host: Host) -> Facts:
        target = known_target(host.target)
        vendor = host.vendor or (None if target.vendor == "generic" else str(target.vendor))
        features = {feature_key(f) for f in target.features} | {
            feature_key(f) for f in host.features}
        return cls(host.target, vendor, frozenset(features), host.kernel, host.glibc,
                   host.pci or None)


def version_key(version: Version, width: int) -> Version:
    """`version` padded with zeros to `width` parts, so 5.10 == 5.10.0."""
    return version + (0,) * (width - len(version))
