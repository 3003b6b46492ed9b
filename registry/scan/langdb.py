"""Language and Spack packages: Python's METADATA / PKG-INFO, and Spack's
`spec.json` (an install prefix's `.spack/spec.json`, or a build cache's spec)."""

from __future__ import annotations

import json
from typing import Any

from registry.scan.inventory import PYPI, SPACK, Package


def python_metadata(data: bytes) -> list[Package]:
    """The distribution a METADATA or PKG-INFO file describes (its headers only: they
    come before the first blank line)."""
    name = version = ""
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key == "Name" and not name:
            name = value.strip()
        elif key == "Version" and not version:
            version = value.strip()
    if not name or not version:
        raise ValueError("no Name and Version headers")
    return [Package(PYPI, name, version)]


def spack_root(doc: Any) -> Package:
    """The root of a Spack spec document (`{"spec": {"nodes": [...]}}`): the package
    the prefix or build holds; its dependencies are builds of their own."""
    nodes = doc.get("spec", {}).get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, list) or not nodes or not isinstance(nodes[0], dict):
        raise ValueError("not a spack spec document")
    root = nodes[0]
    name, version = root.get("name"), root.get("version")
    if not isinstance(name, str) or not isinstance(version, str | int | float):
        raise ValueError("spec root without a name and version")
    extra = {"hash": str(root.get("hash", ""))}
    arch = root.get("arch")
    target = arch.get("target") if isinstance(arch, dict) else None
    target_name = target.get("name") if isinstance(target, dict) else target
    return Package(SPACK, name, str(version), arch=str(target_name or ""), extra=extra)


def spack_spec(data: bytes) -> list[Package]:
    """The package of an install prefix's `.spack/spec.json`."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    return [spack_root(doc)]
