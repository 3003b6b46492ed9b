"""Builds made by a real spack 1.1.0 (tests/fixtures/spack/v1.1.0-signed: trivial-root,
which links trivial-dep), to push as spack's OCI push would (tests/pushing.py
push_spack_oci): the composer's API tests and the dashboard's Spack pages use them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from loadtest.spackgen import FakeSpec

FIXTURE = Path(__file__).parent / "fixtures" / "spack" / "v1.1.0-signed"


def _blob(hexdigest: str) -> bytes:
    return (FIXTURE / "blobs" / "sha256" / hexdigest[:2] / hexdigest).read_bytes()


def real_specs() -> dict[str, FakeSpec]:
    """trivial-dep and trivial-root as spack v1.1.0 pushed them: their spec documents
    and tarballs, to be pushed as spack's OCI push would."""
    out = {}
    for name in ("trivial-dep", "trivial-root"):
        text = next((FIXTURE / "v3" / "manifests" / "spec" / name).glob("*.json")).read_text()
        body = text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----")[0]
        tar_entry, spec_entry = json.loads(body)["data"]
        doc = json.loads(gzip.decompress(_blob(spec_entry["checksum"])))["spec"]
        root = doc["nodes"][0]
        out[name] = FakeSpec(root["name"], root["version"], root["hash"], doc["nodes"],
                             _blob(tar_entry["checksum"]), doc["_meta"]["version"])
    out["trivial-root"].deps = [out["trivial-dep"]]
    return out
