"""The project's platform annotations and the archspec target an OCI platform implies.

Compatibility is archspec's partial order, never a table of our own: the only mapping
kept here is the one OCI names for (architecture, variant) onto archspec's generic
targets, which archspec cannot know.
"""

from __future__ import annotations

import archspec.cpu

# archspec reads its JSON of targets on first use: read it at import, never as a
# blocking read on the server's event loop.
archspec.cpu.TARGETS.get("x86_64")

# One reverse-DNS prefix of our own, as the OCI annotation rules ask.
PREFIX = "io.github.registry.arch."
TARGET = PREFIX + "target"  # an archspec target name, e.g. "zen3"
CUDA = PREFIX + "cuda"  # minimum CUDA version, e.g. "12.2"
ROCM = PREFIX + "rocm"  # minimum ROCm version, e.g. "6.0"
MPI = PREFIX + "mpi"  # flavour@version, e.g. "openmpi@4.1"
MEMORY = PREFIX + "memory"  # minimum memory in bytes
ANNOTATIONS = (TARGET, CUDA, ROCM, MPI, MEMORY)

# Hostile input is cut off before it is looked at.
MAX_NAME = 64

# OCI architecture/variant -> archspec's generic target for it. A missing variant
# means the baseline of the architecture.
_GENERIC: dict[tuple[str, str], str] = {
    ("amd64", ""): "x86_64",
    ("amd64", "v1"): "x86_64",
    ("amd64", "v2"): "x86_64_v2",
    ("amd64", "v3"): "x86_64_v3",
    ("amd64", "v4"): "x86_64_v4",
    ("arm64", ""): "aarch64",
    ("arm64", "v8"): "aarch64",
    ("arm64", "v9"): "armv9.0a",
    ("ppc64le", ""): "ppc64le",
}

# archspec family -> OCI architecture, for telling a cross-family build apart.
FAMILY_TO_OCI = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le"}


class PlatformError(ValueError):
    """A platform, target or host description this module cannot understand."""


def _bounded(kind: str, value: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME or not value.isprintable():
        raise PlatformError(f"{kind} is not a short printable string")
    return value


def known_target(name: str) -> archspec.cpu.Microarchitecture:
    """archspec's target called `name`, or PlatformError when archspec does not know it."""
    _bounded("target", name)
    target = archspec.cpu.TARGETS.get(name)
    if target is None:
        raise PlatformError(f"unknown archspec target {name!r}")
    return target


def family(name: str) -> str:
    """The archspec family (x86_64, aarch64, ppc64le, ...) of a known target."""
    return str(known_target(name).family.name)


def generic_target(architecture: str, variant: str = "") -> str:
    """The archspec target an OCI (architecture, variant) implies, e.g. amd64/v3 -> x86_64_v3."""
    key = (_bounded("architecture", architecture), _bounded("variant", variant or ""))
    name = _GENERIC.get(key)
    if name is None or name not in archspec.cpu.TARGETS:
        raise PlatformError(f"no archspec target for architecture {architecture!r}"
                            + (f" variant {variant!r}" if variant else ""))
    return name


def platform_target(architecture: str, variant: str = "",
                    annotations: dict[str, str] | None = None) -> str:
    """The target a manifest's platform implies: an explicit annotation wins if archspec
    knows it (one of a newer archspec falls back to the variant's generic target); one of
    another family than the platform's is an error."""
    generic = generic_target(architecture, variant)
    explicit = (annotations or {}).get(TARGET)
    if explicit is None or archspec.cpu.TARGETS.get(_bounded("target", explicit)) is None:
        return generic
    if family(explicit) != family(generic):
        raise PlatformError(f"target {explicit!r} is not a {architecture} target")
    return explicit


def known_targets() -> list[str]:
    """Every target archspec knows, by family then name (the composer's choices)."""
    return sorted(archspec.cpu.TARGETS, key=lambda n: (
        str(archspec.cpu.TARGETS[n].family), n))
