"""Package URLs (purl) for what a scan finds, made by packageurl-python so that
the escaping and the qualifiers' order are the spec's, not ours. `spack` is not a
registered purl type; it is what this registry names Spack packages by."""

from __future__ import annotations

import re

from packageurl import PackageURL

from registry.scan.inventory import APK, DEB, PYPI, RPM, SPACK, Distro, Package


def _pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503 normalization


def purl(p: Package, distro: Distro | None) -> str:
    """The package URL of `p`; OS packages name the distribution found beside them."""
    qualifiers: dict[str, str] = {}
    if p.arch:
        qualifiers["arch"] = p.arch
    namespace = None
    name = p.name
    if p.ecosystem in (DEB, APK, RPM):
        namespace = distro.id if distro else {DEB: "debian", APK: "alpine"}.get(p.ecosystem)
        if distro and distro.version_id:
            qualifiers["distro"] = f"{distro.id}-{distro.version_id}"
        if p.ecosystem == DEB and p.source and p.source != p.name:
            qualifiers["upstream"] = p.source  # as Trivy and syft name the source
        if p.ecosystem == RPM and p.extra.get("epoch"):
            qualifiers["epoch"] = p.extra["epoch"]
    elif p.ecosystem == PYPI:
        name = _pypi_name(name)
    elif p.ecosystem == SPACK and p.extra.get("hash"):
        qualifiers["hash"] = p.extra["hash"]
    version = p.version
    if p.ecosystem == RPM and ":" in version:  # the epoch is a qualifier in a purl
        version = version.split(":", 1)[1]
    return str(PackageURL(type=p.ecosystem, namespace=namespace, name=name,
                          version=version, qualifiers=qualifiers or None).to_string())
