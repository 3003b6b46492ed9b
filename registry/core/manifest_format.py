"""Parsing and validation of manifest documents (pure logic, no I/O).

Covers OCI image manifests and indexes (image-spec v1.1, artifacts included)
and Docker schema2 manifests and manifest lists. Anything else is refused
with MANIFEST_INVALID. The bytes themselves are never rewritten: we validate
the document and keep exactly what the client sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from registry.core.errors import DigestInvalid, ManifestInvalid
from registry.core.grammar import Digest, is_valid_media_type

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
# Content-Types that say nothing about which manifest this is.
GENERIC_TYPES = frozenset({"", "application/json", "application/octet-stream", "text/plain"})

MAX_DESCRIPTORS = 10_000


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(slots=True)
class Manifest:
    """A validated manifest: what it references and what describes it."""

    media_type: str
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blobs(self) -> list[Descriptor]:
        """Blobs that must be in the repository (config and layers)."""
        out = [self.config] if self.config else []
        return out + self.layers

    @property
    def effective_artifact_type(self) -> str | None:
        """What the referrers API reports: artifactType, else the config media type."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and not self.is_index:
            return self.config.media_type
        return None


def base_media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _fail(message: str, detail: Any = None) -> ManifestInvalid:
    return ManifestInvalid(message, detail)


def _str_map(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail(f"{where} must be a map of strings to strings")
    return value


def parse_descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    if not is_valid_media_type(media_type):
        raise _fail(f"{where}.mediaType is missing or invalid", {"mediaType": media_type})
    raw_digest = value.get("digest")
    if not isinstance(raw_digest, str):
        raise _fail(f"{where}.digest is missing")
    try:
        digest = Digest.parse(raw_digest)
    except DigestInvalid as exc:
        raise _fail(f"{where}.digest is invalid: {exc.message}", {"digest": raw_digest}) from None
    size = value.get("size")
    if type(size) is not int or size < 0:
        raise _fail(f"{where}.size must be a non-negative integer")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not is_valid_media_type(artifact_type):
        raise _fail(f"{where}.artifactType is invalid")
    platform = value.get("platform")
    if platform is not None:
        if not isinstance(platform, dict):
            raise _fail(f"{where}.platform must be an object")
        for key in ("architecture", "os"):
            if not isinstance(platform.get(key), str):
                raise _fail(f"{where}.platform.{key} must be a string")
    urls = value.get("urls") or ()
    if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise _fail(f"{where}.urls must be a list of strings")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=artifact_type,
        annotations=_str_map(value.get("annotations"), f"{where}.annotations"),
        platform=platform,
        urls=tuple(urls),
    )


def _descriptor_list(value: Any, where: str) -> list[Descriptor]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{where} must be an array")
    if len(value) > MAX_DESCRIPTORS:
        raise _fail(f"{where} has more than {MAX_DESCRIPTORS} entries")
    return [parse_descriptor(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Two parsers that pick different copies of a key would disagree about what
    a manifest references, so a document with duplicate keys is refused."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        dup = ""
        for k, _ in pairs:
            if k in seen:
                dup = k
                break
            seen.add(k)
        raise _fail("duplicate key in manifest JSON", {"key": dup[:100]})
    return doc


def decode_json(data: bytes) -> dict[str, Any]:
    try:
        # Strict UTF-8 first: json.loads(bytes) would let lone surrogates through.
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise _fail("manifest is not valid JSON", {"error": str(exc)[:200]}) from None
    if not isinstance(doc, dict):
        raise _fail("manifest must be a JSON object")
    return doc


def detect_media_type(doc: dict[str, Any], content_type: str | None) -> str:
    """The manifest's media type from the header and the document, which must agree."""
    header = base_media_type(content_type)
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _fail("mediaType must be a string")
    if declared and header not in GENERIC_TYPES and declared != header:
        raise _fail(
            "Content-Type does not match the manifest's mediaType",
            {"contentType": header, "mediaType": declared},
        )
    media_type = declared or (header if header not in GENERIC_TYPES else "")
    if not media_type:
        # No declared type at all: infer it the way image-spec documents do.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise _fail("unsupported manifest media type", {"mediaType": media_type})
    return media_type


def parse_manifest(data: bytes, content_type: str | None) -> Manifest:
    """Validate a manifest document; raise ManifestInvalid with a precise reason."""
    doc = decode_json(data)
    media_type = detect_media_type(doc, content_type)
    if doc.get("schemaVersion") != 2:
        raise _fail("schemaVersion must be 2")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not is_valid_media_type(artifact_type):
        raise _fail("artifactType is invalid")
    manifest = Manifest(
        media_type=media_type,
        artifact_type=artifact_type,
        annotations=_str_map(doc.get("annotations"), "annotations") or {},
    )
    if doc.get("subject") is not None:
        manifest.subject = parse_descriptor(doc["subject"], "subject")
    if media_type in INDEX_TYPES:
        if "manifests" not in doc:
            raise _fail("an index needs a manifests array")
        manifest.manifests = _descriptor_list(doc["manifests"], "manifests")
        if media_type == DOCKER_LIST and manifest.subject is not None:
            raise _fail("a Docker manifest list cannot carry a subject")
    else:
        if "config" not in doc:
            raise _fail("an image manifest needs a config descriptor")
        manifest.config = parse_descriptor(doc["config"], "config")
        manifest.layers = _descriptor_list(doc.get("layers"), "layers")
        if media_type == DOCKER_MANIFEST and "layers" not in doc:
            raise _fail("a Docker manifest needs a layers array")
    return manifest


def named_digests(raw: bytes) -> set[str]:
    """The digests a stored manifest's descriptors name (config, layers, an index's
    manifests, an artifact's blobs), read leniently: housekeeping (the collector,
    retention) must keep what a document names, not judge the document."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return set()
    named = set()
    if isinstance(doc, dict):
        for desc in [doc.get("config"), *(doc.get("layers") or []),
                     *(doc.get("manifests") or []), *(doc.get("blobs") or [])]:
            if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
                named.add(desc["digest"])
    return named
