"""The documents spack reads, made from a record: what lets a spec pushed one
way be installed another.

- from an OCI push (a `.spack` tag): the layout v3 spec manifest and gzipped
  spec file, the layout v2 `.spec.json`;
- from a classic push through S3: the OCI image manifest and config whose
  layers are the same tarball blobs;
- the index in each form: layout v3 index manifest, OCI `index.spack` image.

Everything is deterministic (gzip without a timestamp, fixed key order), so a
document made twice, or by two replicas, has one digest.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
from typing import Any

import archspec.cpu

from registry.core.grammar import Digest
from registry.spack.specs import SpecRecord

TARBALL_TYPE = "application/vnd.spack.install.v2.tar+gzip"
SPEC_TYPE = {4: "application/vnd.spack.spec.v4+json", 5: "application/vnd.spack.spec.v5+json"}
DB_TYPE = {4: "application/vnd.spack.db.v7+json", 5: "application/vnd.spack.db.v8+json"}
KEY_TYPE = "application/pgp-keys"
KEY_INDEX_TYPE = "application/vnd.spack.keyindex.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYOUT_JSON = b'{"signing": "gpg"}'
EMPTY_CONFIG = b"{}"
# Go's names for the target families spack maps (binary_distribution._oci_archspec_to_gooarch).
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as f:
        f.write(data)
    return buf.getvalue()


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def spec_file_v3(record: SpecRecord) -> bytes:
    """The gzipped spec file of layout v3 (url_buildcache.push_binary_package)."""
    return gzip_bytes(dumps({"spec": record.spec.doc, "buildcache_layout_version": 2}))


def spec_json_v2(record: SpecRecord) -> bytes:
    """The `.spec.json` of layout v2 (binary_distribution of spack 0.2x)."""
    return dumps({"spec": record.spec.doc, "buildcache_layout_version": 2,
                  "binary_cache_checksum": {"hash_algorithm": "sha256",
                                            "hash": record.tarball.hex}})


def blob_entry(size: int, media_type: str, digest: Digest, compression: str) -> dict:
    return {"contentLength": size, "mediaType": media_type, "compression": compression,
            "checksumAlgorithm": digest.algorithm, "checksum": digest.hex}


def manifest_v3(entries: list[dict]) -> bytes:
    """A layout v3 manifest; spack writes one entry per line (clearsigning
    truncates lines over 19,995 characters)."""
    return json.dumps({"version": 3, "data": entries}, indent=0,
                      separators=(",", ":")).encode()


def spec_manifest_v3(record: SpecRecord, spec_blob: Digest, spec_blob_size: int) -> bytes:
    return manifest_v3([
        blob_entry(record.tarball_size, TARBALL_TYPE, record.tarball, "gzip"),
        blob_entry(spec_blob_size, SPEC_TYPE[record.spec.format], spec_blob, "gzip"),
    ])


@functools.lru_cache(maxsize=1024)  # asked for on every index read: one per index version
def index_manifest_v3(fmt: int, digest: Digest, size: int) -> bytes:
    return manifest_v3([blob_entry(size, DB_TYPE[fmt], digest, "none")])


def key_manifest_v3(digest: Digest, size: int, media_type: str = KEY_TYPE) -> bytes:
    return manifest_v3([blob_entry(size, media_type, digest, "none")])


def key_index(fingerprints: list[str]) -> bytes:
    return dumps({"keys": {fpr: {} for fpr in sorted(set(fingerprints))}})


def parse_manifest_v3(doc: Any) -> list[dict]:
    """The blob entries of a layout v3 manifest; ValueError when it is not one."""
    if not isinstance(doc, dict) or doc.get("version") != 3:
        raise ValueError("not a layout v3 manifest")
    data = doc.get("data")
    if not isinstance(data, list) or not 1 <= len(data) <= 64:
        raise ValueError("a manifest lists no blobs")
    out = []
    for entry in data:
        if not isinstance(entry, dict):
            raise ValueError("a blob entry is not an object")
        if entry.get("checksumAlgorithm") != "sha256":
            raise ValueError("blobs must be named by sha256")
        size = entry.get("contentLength")
        if not isinstance(size, int) or size < 0:
            raise ValueError("a blob entry has no valid contentLength")
        if not isinstance(entry.get("mediaType"), str):
            raise ValueError("a blob entry has no mediaType")
        Digest.parse(f"sha256:{entry.get('checksum')}")
        out.append(entry)
    return out


def target_family(target: str) -> str:
    """The family of a microarchitecture (skylake -> x86_64), by archspec."""
    found = archspec.cpu.TARGETS.get(target)
    return found.family.name if found is not None else target


def oci_config(record: SpecRecord, diff_ids: list[str], layout_version: int = 2) -> bytes:
    """The image config spack writes for a spec (binary_distribution._oci_put_manifest):
    the image part, then spack's fields."""
    root = record.root
    family = target_family(root.target)
    config: dict[str, Any] = {
        "architecture": GOARCH.get(family, family),
        "os": root.platform or "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {"Env": []},
        "spec": record.spec.doc,
        "buildcache_layout_version": layout_version,
        "binary_cache_checksum": {"hash_algorithm": "sha256", "hash": record.tarball.hex},
    }
    return dumps(config)


def oci_manifest(config: Digest, config_size: int, layers: list[tuple[Digest, int]],
                 description: str | None = None) -> bytes:
    doc: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "schemaVersion": 2,
        "config": {"mediaType": OCI_CONFIG, "digest": str(config), "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": str(d), "size": s} for d, s in layers],
    }
    if description:
        doc["annotations"] = {"org.opencontainers.image.description": description}
    return dumps(doc)


def oci_index_manifest(index: Digest, index_size: int) -> bytes:
    """`index.spack` as spack's update-index pushes it: a `{}` config and the
    database as the one (mislabelled) layer."""
    return oci_manifest(Digest.of(EMPTY_CONFIG), len(EMPTY_CONFIG), [(index, index_size)])
