"""Domain errors, each carrying the OCI error code and HTTP status it maps to.

Each protocol family renders them in one place (OCI JSON, S3 XML, ...); handlers
never build error bodies themselves. Storage failures are translated here too
(`from_storage`), so the HTTP layer never needs to know the storage layer.
"""

from __future__ import annotations

from typing import Any

# Re-exported: the rooms above core (cache, spack, auth) may not import storage,
# and catch its failures by this name.
from registry.storage.driver import StorageError as StorageError
from registry.storage.driver import StorageUnavailable


class RegistryError(Exception):
    """Base class: `code` is one of the OCI distribution-spec error codes."""

    code = "UNSUPPORTED"
    status = 400
    message = "the operation is unsupported"

    def __init__(self, message: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None, *, status: int | None = None,
                 code: str | None = None) -> None:
        self.message = message or type(self).message
        self.detail = detail
        self.headers = headers or {}
        if status is not None:  # for answers no subclass names (417, 500, aiohttp's own)
            self.status = status
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        entry["detail"] = self.detail if self.detail is not None else {}
        return {"errors": [entry]}


class BlobUnknown(RegistryError):
    code, status, message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class RangeNotSatisfiable(BlobUploadInvalid):
    """Out-of-order or repeated chunk: the spec requires 416, and the answer says
    where the upload stands (`upload_id`, `repo`, `offset`), as a status request
    would. Plain fields, not an UploadStatus: errors sit below the value types."""

    status = 416
    message = "chunk does not continue the upload"

    def __init__(self, message: str | None = None, detail: Any = None, *,
                 upload_id: str, repo: str, offset: int) -> None:
        super().__init__(message, detail)
        self.upload_id = upload_id
        self.repo = repo
        self.offset = offset


class BlobUploadUnknown(RegistryError):
    code, status, message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, status, message = "DIGEST_INVALID", 400, "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, status = "MANIFEST_BLOB_UNKNOWN", 404
    message = "manifest references a blob unknown to the repository"


class ManifestInvalid(RegistryError):
    code, status, message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestUnknown(RegistryError):
    code, status, message = "MANIFEST_UNKNOWN", 404, "manifest unknown to registry"


class NameInvalid(RegistryError):
    code, status, message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, message = "SIZE_INVALID", 400, "provided length did not match content length"


class RangeUnsatisfiable(SizeInvalid):
    """A blob GET whose Range lies outside the blob of `size` bytes (416; the spec
    names no code)."""

    status = 416
    message = "requested range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(detail={"size": size})
        self.size = size


class TooLarge(SizeInvalid):
    status = 413
    message = "payload too large"


class Unsupported(RegistryError):
    code, status, message = "UNSUPPORTED", 405, "the operation is unsupported"


class NotFound(RegistryError):
    """A path under /v2/ that names no endpoint."""

    code, status, message = "UNSUPPORTED", 404, "no such endpoint"


class Unauthorized(RegistryError):
    """No credentials, or ones that do not hold: the client should log in (the
    challenge is in the WWW-Authenticate header)."""

    code, status, message = "UNAUTHORIZED", 401, "authentication required"


class Denied(RegistryError):
    code, status, message = "DENIED", 403, "requested access to the resource is denied"


class TooManyRequests(RegistryError):
    code, status, message = "TOOMANYREQUESTS", 429, "too many requests"


class StoreUnavailable(RegistryError):
    """The storage backend is down or timing out: retry after `retry_after` seconds (503)."""

    code, status, message = "UNAVAILABLE", 503, "storage backend unavailable, retry later"

    def __init__(self, message: str | None = None, detail: Any = None,
                 retry_after: int = 5) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


class UpstreamUnavailable(StoreUnavailable):
    """A node cache's upstream registry did not answer, or answered 5xx: retry later (503)."""

    message = "upstream registry unavailable, retry later"


class BadUpstream(RegistryError):
    """A node cache's upstream registry answered something unusable (bytes that do not
    match their digest, no size for a blob): nothing the client can fix (502)."""

    code, status, message = "UNKNOWN", 502, "upstream registry sent an invalid answer"


class ObjectError(RegistryError):
    """An error of the object store (buckets, keys, multipart uploads) named by its
    S3 code (NoSuchKey, InvalidPart, BadDigest, ...): S3 clients act on the code,
    and the S3 family writes it as is."""

    def __init__(self, s3_code: str, message: str, status: int = 400) -> None:
        super().__init__(message, status=status, code=s3_code)
        self.s3_code = s3_code


class HeaderSectionTooLarge(RegistryError):
    """A request whose header fields HTTP parsing refused before any handler ran: one
    longer than the parser reads, or too many of them. OCI has no code of its own
    for it; S3 has (RequestHeaderSectionTooLarge)."""


class InternalError(RegistryError):
    """Something failed that the client cannot fix: answered 500 with nothing of the
    server's internals. `cause` is what to log."""

    code, status, message = "UNKNOWN", 500, "internal server error"

    def __init__(self, message: str | None = None, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


def from_storage(exc: BaseException) -> RegistryError | None:
    """The domain error for a storage failure that escaped the services, or None
    when `exc` is not one. A store that does not answer is worth a retry (503);
    any other storage failure is ours (500)."""
    if isinstance(exc, StorageUnavailable):
        return StoreUnavailable(detail={"driver": exc.driver})
    if isinstance(exc, StorageError):
        return InternalError("internal storage error", exc)
    return None
