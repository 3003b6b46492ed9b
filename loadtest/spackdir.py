"""Build cache directories as `spack buildcache push file:///DIR` writes them,
from generated specs: layout v3 (spack >= 1.0) and layout v2 (spack 0.2x).
Written the way spack names and formats them, independently of the registry's
own synthesis, so importing them tests the registry against spack's shapes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from loadtest.spackgen import FakeSpec


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _blob(root: Path, data: bytes) -> str:
    hexd = hashlib.sha256(data).hexdigest()
    _write(root / "blobs" / "sha256" / hexd[:2] / hexd, data)
    return hexd


def write_v3(root: Path, specs: list[FakeSpec]) -> None:
    """Blobs (tarball, gzipped spec file), then the spec manifest, per spec;
    plus `v3/layout.json` and an index manifest, as spack writes them."""
    _write(root / "v3" / "layout.json", b'{"signing": "gpg"}')
    for s in specs:
        tar = _blob(root, s.tarball)
        spec_file = s.spec_file_v3()
        spec = _blob(root, spec_file)
        manifest = {"version": 3, "data": [
            {"contentLength": len(s.tarball), "mediaType":
             "application/vnd.spack.install.v2.tar+gzip", "compression": "gzip",
             "checksumAlgorithm": "sha256", "checksum": tar},
            {"contentLength": len(spec_file), "mediaType":
             f"application/vnd.spack.spec.v{s.fmt}+json", "compression": "gzip",
             "checksumAlgorithm": "sha256", "checksum": spec},
        ]}
        name = f"{s.name}-{s.version}-{s.hash}.spec.manifest.json"
        _write(root / "v3" / "manifests" / "spec" / s.name / name,
               json.dumps(manifest, indent=0).encode())
    # A stale index, as a pipeline's own update-index leaves one: the import skips it.
    _write(root / "v3" / "manifests" / "index" / "index.manifest.json", b'{"version": 3}')


def v2_names(s: FakeSpec) -> tuple[str, str]:
    """(spec file path, tarball path) below `build_cache/`, as spack 0.23 names them."""
    stem = f"linux-debian12-x86_64_v3-gcc-12.2.0-{s.name}-{s.version}-{s.hash}"
    folder = f"linux-debian12-x86_64_v3/gcc-12.2.0/{s.name}-{s.version}"
    return f"{stem}.spec.json", f"{folder}/{stem}.spack"


def write_v2(root: Path, specs: list[FakeSpec]) -> None:
    """Per spec the `.spack` tarball and the `.spec.json` (unsigned), plus an
    index.json the import is meant to skip."""
    for s in specs:
        spec_name, tar_name = v2_names(s)
        _write(root / "build_cache" / tar_name, s.tarball)
        _write(root / "build_cache" / spec_name, s.spec_json_v2())
    _write(root / "build_cache" / "index.json", b"{}")
    _write(root / "build_cache" / "index.json.hash", b"0" * 64)
