"""The value types the core's Protocols speak: what a service answers or is told.

They live apart from the services that produce them so that the Protocols
(core.protocols), the domain errors and every decorator can name them without
importing an implementation: the layers contract in pyproject.toml keeps this
module below the Protocols and above only grammar, errors and serving plans.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from registry.core.grammar import Digest
from registry.core.ranges import ByteRange
from registry.core.serving import ByteStream, LocalFile, Sendable

# The Content-Type S3 answers for an object stored without one.
DEFAULT_TYPE = "binary/octet-stream"


@dataclass(slots=True)
class UploadStatus:
    """Where an upload session stands: its id, repository and bytes received."""

    id: str
    repo: str
    size: int


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """A manifest as served: digest, media type, size and bytes (None for HEAD).
    `stale` says the answer could not be revalidated where it comes from (a node
    cache whose upstream is down serving the last target it knew of a tag)."""

    digest: Digest
    media_type: str
    size: int
    data: bytes | None = None  # None for HEAD
    stale: bool = False


@dataclass(slots=True)
class Checks:
    """What the client said the body should be: Content-MD5 (raw 16 bytes), a
    hex x-amz-content-sha256, an x-amz-checksum-crc32 (base64; in a header, or
    in an aws-chunked trailer, filled in when the body ends: `want_crc32` says
    one is coming), and its length."""

    length: int | None = None
    md5: bytes | None = None
    sha256: str | None = None
    crc32: str | None = None
    want_crc32: bool = False


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What S3 tells about an object, and where its bytes are (`blob` or `data`).
    `etag` is unquoted: the MD5 hex of the content, or `<md5 of part md5s>-<n>`."""

    key: str
    size: int
    etag: str
    modified: float
    content_type: str = DEFAULT_TYPE
    blob: Digest | None = None
    data: str | None = None

    def to_json(self) -> bytes:
        doc: dict[str, object] = {"key": self.key, "size": self.size, "etag": self.etag,
                                  "modified": self.modified, "type": self.content_type}
        if self.blob is not None:
            doc["blob"] = str(self.blob)
        else:
            doc["data"] = self.data
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ObjectInfo:
        doc = json.loads(raw)
        blob = doc.get("blob")
        return cls(doc["key"], int(doc["size"]), str(doc["etag"]), float(doc["modified"]),
                   str(doc.get("type") or DEFAULT_TYPE),
                   Digest.parse(blob) if blob else None, doc.get("data"))

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'


@dataclass(frozen=True, slots=True)
class BucketInfo:
    """A bucket of the S3-compatible API: its name and when it was created."""

    name: str
    created: float


@dataclass(slots=True)
class ObjectPlan(Sendable):
    """The answer to an object GET or HEAD: the entry, the range asked for (None:
    all of it), and how to send it (None for a HEAD or a 304)."""

    info: ObjectInfo
    range: ByteRange | None = None
    body: LocalFile | ByteStream | None = None
    not_modified: bool = False

    @property
    def total(self) -> int:
        return self.info.size


@dataclass(slots=True)
class ListPage:
    """One page of ListObjectsV2: objects and common prefixes in S3 order."""

    objects: list[ObjectInfo] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One uploaded part of a multipart upload: its number, ETag (unquoted MD5
    hex), size, the id of its bytes and when it arrived."""

    number: int
    etag: str
    size: int
    data: str
    modified: float


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob the store holds: its digest, size, and when its file was last written
    (what the collector's grace period and the node cache's eviction go by)."""

    digest: Digest
    size: int
    mtime: float
