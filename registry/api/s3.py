"""The S3-compatible family, path style under `/s3/`: `/s3/<bucket>/<key>`.

S3 names its operations by method, path and query (`?uploads`, `?uploadId=`,
`?partNumber=`, `?list-type=2`, `?delete`), so routing classifies every request
into one operation before the access step; handlers are registered per
operation. Errors are S3's XML (`<Error><Code>...`), with S3's codes, because
boto3 and spack read those. Which operations exist is decided by the Spack
build-cache stage (handlers in api/s3_buckets.py and api/s3_objects.py, mounted
by `s3_buckets.register`); an operation without a handler answers 501 NotImplemented.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote
from xml.sax.saxutils import escape

from aiohttp import web

from registry.api.dispatch import Handler
from registry.api.errors import classify, headers_for
from registry.core.access import DELETE, PULL, PUSH, Scope
from registry.core.errors import HeaderSectionTooLarge, ObjectError
from registry.core.grammar import is_valid_bucket

FAMILY = "s3"
MAX_KEY_BYTES = 1024
MAX_PART_NUMBER = 10_000


# An error with S3's own code (NoSuchKey, InvalidPart, ...); core raises the same.
S3Error = ObjectError

@dataclass(frozen=True, slots=True)
class S3Route:
    """One S3 request: the operation, and the bucket and key it names ("" if none)."""

    operation: str
    bucket: str = ""
    key: str = ""


# (method, what the path names, the query parameter that selects the operation)
# -> operation; checked in order, so the more specific selector comes first.
_OPERATIONS: list[tuple[str, str, str | None, str]] = [
    ("GET", "service", None, "ListBuckets"),
    ("GET", "bucket", "uploads", "ListMultipartUploads"),
    ("GET", "bucket", "location", "GetBucketLocation"),
    ("GET", "bucket", "list-type", "ListObjectsV2"),
    ("GET", "bucket", None, "ListObjects"),
    ("HEAD", "bucket", None, "HeadBucket"),
    ("PUT", "bucket", None, "CreateBucket"),
    ("DELETE", "bucket", None, "DeleteBucket"),
    ("POST", "bucket", "delete", "DeleteObjects"),
    ("GET", "object", "uploadId", "ListParts"),
    ("GET", "object", None, "GetObject"),
    ("HEAD", "object", None, "HeadObject"),
    ("PUT", "object", "partNumber", "UploadPart"),
    ("PUT", "object", None, "PutObject"),
    ("POST", "object", "uploads", "CreateMultipartUpload"),
    ("POST", "object", "uploadId", "CompleteMultipartUpload"),
    ("DELETE", "object", "uploadId", "AbortMultipartUpload"),
    ("DELETE", "object", None, "DeleteObject"),
]
_READS = {"ListBuckets", "ListMultipartUploads", "GetBucketLocation", "ListObjectsV2",
          "ListObjects", "HeadBucket", "ListParts", "GetObject", "HeadObject"}
_DELETES = {"DeleteBucket", "DeleteObjects", "AbortMultipartUpload", "DeleteObject"}

# Domain errors in S3's words, by OCI code first, then by status.
_BY_CODE = {"BLOB_UNKNOWN": "NoSuchKey", "MANIFEST_UNKNOWN": "NoSuchKey",
            "NAME_UNKNOWN": "NoSuchBucket", "NAME_INVALID": "InvalidBucketName",
            "DIGEST_INVALID": "BadDigest", "SIZE_INVALID": "InvalidArgument",
            "DENIED": "AccessDenied", "UNAUTHORIZED": "AccessDenied"}
_BY_STATUS = {400: "InvalidRequest", 401: "AccessDenied", 403: "AccessDenied",
              404: "NoSuchKey", 405: "MethodNotAllowed", 411: "MissingContentLength",
              413: "EntityTooLarge", 416: "InvalidRange", 417: "InvalidRequest",
              429: "SlowDown", 501: "NotImplemented", 503: "ServiceUnavailable"}


def classify_request(method: str, bucket: str, key: str, query: Mapping[str, str]) -> str:
    """The S3 operation a request performs; S3Error when it is none we know."""
    target = "object" if key else ("bucket" if bucket else "service")
    for m, what, selector, operation in _OPERATIONS:
        if m == method and what == target and (selector is None or selector in query):
            if operation == "UploadPart":
                _check_part(query)
            return operation
    raise S3Error("MethodNotAllowed", f"{method} is not allowed on this {target}", 405)


def _check_part(query: Mapping[str, str]) -> None:
    raw = query.get("partNumber", "")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PART_NUMBER):
        raise S3Error("InvalidArgument",
                      f"Part number must be an integer between 1 and {MAX_PART_NUMBER}")
    if not query.get("uploadId"):
        raise S3Error("InvalidArgument", "uploadId is required with partNumber")


def parse_path(sub: str) -> tuple[str, str]:
    """(bucket, key) from the raw path below `/s3/`. Keys are percent-decoded as
    UTF-8; a NUL, a `.` or `..` segment, or more than 1024 bytes is refused: such a
    key can only be a mistake or an attack on whatever stores it."""
    bucket_raw, _, key_raw = sub.partition("/")
    try:
        bucket = unquote(bucket_raw, errors="strict")
        key = unquote(key_raw, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "the request path is not valid UTF-8") from None
    if bucket and not is_valid_bucket(bucket):  # before the access step: S3 says so too
        raise S3Error("InvalidBucketName", "the specified bucket is not valid")
    return bucket, check_key(key)


def check_key(key: str) -> str:
    """Refuse a key with a NUL, a `.` or `..` segment, or more than 1024 bytes
    (from a path or from a DeleteObjects body alike)."""
    if "\x00" in key:
        raise S3Error("InvalidArgument", "object keys may not contain NUL")
    if any(seg in (".", "..") for seg in key.split("/")):
        raise S3Error("InvalidArgument", "object keys may not contain . or .. segments")
    if len(key.encode(errors="surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "your key is too long")
    return key


async def _not_implemented(request: web.BaseRequest, route: S3Route,
                           ctx: object) -> web.StreamResponse:
    raise S3Error("NotImplemented", f"{route.operation} is not implemented", 501)


class S3Family:
    """S3-compatible object API for Spack's `s3://` mirrors (path style)."""

    name = FAMILY
    prefix = "/s3/"
    root = "/s3"

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def add(self, operation: str, handler: Handler) -> None:
        self._handlers[operation] = handler

    def resolve(self, request: web.BaseRequest, path: str) -> tuple[Handler, S3Route, Scope]:
        sub = path[len(self.prefix):] if path.startswith(self.prefix) else ""
        bucket, key = parse_path(sub)
        operation = classify_request(request.method, bucket, key, request.query)
        handler = self._handlers.get(operation, _not_implemented)
        action = PULL if operation in _READS else DELETE if operation in _DELETES else PUSH
        return handler, S3Route(operation, bucket, key), Scope(FAMILY, bucket, action)

    def render_error(self, exc: Exception, request: web.BaseRequest) -> web.StreamResponse:
        err = classify(exc, request)
        code = (getattr(err, "s3_code", None)
                or ("RequestHeaderSectionTooLarge"
                    if isinstance(err, HeaderSectionTooLarge) else None)
                or (_BY_CODE.get(err.code) if err.status != 416 else "InvalidRange")
                or _BY_STATUS.get(err.status,
                                  "InternalError" if err.status >= 500 else "InvalidRequest"))
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{escape(err.message)}</Message>"
                f"<Resource>{escape(request.raw_path.partition('?')[0][:1024])}</Resource></Error>")
        headers = headers_for(err)
        headers["Content-Type"] = "application/xml"
        return web.Response(status=err.status, body=body.encode(), headers=headers)

    def finish(self, response: web.StreamResponse) -> None:
        return None
