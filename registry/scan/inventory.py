"""What a scan finds: packages, findings, the distribution, and errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Ecosystems as the scan names them (OSV's names are derived when advisories are
# matched: `Debian:12` from the distribution).
DEB, APK, RPM, PYPI, SPACK = "deb", "apk", "rpm", "pypi", "spack"


@dataclass(slots=True)
class Package:
    """An installed package: where it was found (path, layer digest) and its purl."""

    ecosystem: str
    name: str
    version: str
    source: str = ""  # the source package (dpkg `Source:`, apk origin, rpm SRPM)
    arch: str = ""
    path: str = ""
    layer: str = ""
    purl: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # spack: hash; rpm: epoch


@dataclass(slots=True)
class Finding:
    """Something worth a look that is not a package: a private key, a setuid file."""

    kind: str  # "private-key" | "setuid" | "setgid"
    path: str
    layer: str = ""
    detail: str = ""


@dataclass(slots=True)
class Distro:
    """The operating system `etc/os-release` names."""

    id: str
    version_id: str
    pretty_name: str = ""
    codename: str = ""

    @property
    def osv_ecosystem(self) -> str | None:
        """OSV's name for it (`Debian:12`, `Alpine:v3.19`, ...), None when unknown."""
        major_minor = ".".join(self.version_id.split(".")[:2])
        major = self.version_id.split(".")[0]
        if not self.version_id:
            return None
        return {"debian": f"Debian:{major}", "alpine": f"Alpine:v{major_minor}",
                "ubuntu": f"Ubuntu:{self.version_id}", "rocky": f"Rocky Linux:{major}",
                "almalinux": f"AlmaLinux:{major}", "rhel": f"Red Hat:{major}",
                "opensuse-leap": f"openSUSE:{self.version_id}"}.get(self.id)


@dataclass(slots=True)
class ScanError:
    """A part of the image that could not be read, and why."""

    message: str
    layer: str = ""
    path: str = ""


@dataclass(slots=True)
class Result:
    """One manifest's scan."""

    packages: list[Package] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    distro: Distro | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)  # digest, compression, ...

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.distro is not None:
            out["distro"]["osv_ecosystem"] = self.distro.osv_ecosystem
        return out
