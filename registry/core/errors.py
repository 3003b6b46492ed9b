"""Domain errors, each carrying the OCI error code and HTTP status it maps to.

The HTTP layer turns any RegistryError into the spec's JSON error body in one
middleware; handlers never build error JSON themselves.
"""

from __future__ import annotations

from typing import Any


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
    """Out-of-order or repeated chunk: the spec requires 416."""

    status = 416
    message = "chunk does not continue the upload"


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
    """A blob GET whose Range lies outside the blob (416; the spec names no code)."""

    status = 416
    message = "requested range not satisfiable"


class TooLarge(SizeInvalid):
    status = 413
    message = "payload too large"


class Unsupported(RegistryError):
    code, status, message = "UNSUPPORTED", 405, "the operation is unsupported"


class NotFound(RegistryError):
    """A path under /v2/ that names no endpoint."""

    code, status, message = "UNSUPPORTED", 404, "no such endpoint"


class Denied(RegistryError):
    code, status, message = "DENIED", 403, "requested access to the resource is denied"


class TooManyRequests(RegistryError):
    code, status, message = "TOOMANYREQUESTS", 429, "too many requests"


class StoreUnavailable(RegistryError):
    """The storage backend is down or timing out: retry later (503)."""

    code, status, message = "UNAVAILABLE", 503, "storage backend unavailable, retry later"

    def __init__(self, message: str | None = None, detail: Any = None,
                 retry_after: int = 5) -> None:
        super().__init__(message, detail, {"Retry-After": str(retry_after)})
