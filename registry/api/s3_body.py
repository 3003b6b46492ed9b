"""Request bodies of S3 writes: what the client says they are, and aws-chunked framing.

botocore (>= 1.36) sends PutObject and UploadPart bodies over HTTPS in
`aws-chunked` content encoding with a trailing checksum (`Content-Encoding:
aws-chunked`, `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`,
`x-amz-decoded-content-length`): Spack pushing to an `https://.../s3` endpoint
does exactly that. The framing is removed here as the body streams, so the
stored object is the payload, never the frames.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator

from aiohttp import web

from registry.api.common import body_chunks, content_length
from registry.core.errors import ObjectError
from registry.core.types import Checks

# A chunk header (`<hex size>[;chunk-signature=<64 hex>]`) or trailer is short.
MAX_LINE = 4096
MAX_TRAILER = 16 << 10
MAX_CONTENT_TYPE = 256
_HEX64 = re.compile(r"[0-9a-f]{64}")
CRC32_HEADER = "x-amz-checksum-crc32"


def _framing(message: str) -> ObjectError:
    return ObjectError("IncompleteBody", f"malformed aws-chunked body: {message}")


def _uint(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        raise ObjectError("InvalidArgument", f"invalid {name}")
    return int(raw)


def is_aws_chunked(request: web.BaseRequest) -> bool:
    encodings = request.headers.get("Content-Encoding", "").lower()
    return ("aws-chunked" in encodings
            or request.headers.get("x-amz-content-sha256", "").startswith("STREAMING-"))


def write_body(request: web.BaseRequest) -> tuple[AsyncIterator[bytes], Checks]:
    """The payload of a PutObject or UploadPart as it streams, and the checks the
    client asked for (length, Content-MD5, a hex x-amz-content-sha256)."""
    checks = Checks()
    raw_md5 = request.headers.get("Content-MD5")
    if raw_md5 is not None:
        try:
            checks.md5 = base64.b64decode(raw_md5.strip(), validate=True)
        except (binascii.Error, ValueError):
            checks.md5 = None
        if checks.md5 is None or len(checks.md5) != 16:
            raise ObjectError("InvalidDigest", "the Content-MD5 you specified is not valid")
    declared = request.headers.get("x-amz-content-sha256", "").lower()
    if _HEX64.fullmatch(declared):
        checks.sha256 = declared
    # botocore adds a CRC32 (flexible checksums): in a header over HTTP, in the
    # aws-chunked trailer over HTTPS. Other algorithms are not checked.
    crc32 = request.headers.get(CRC32_HEADER)
    if crc32 is not None:
        checks.crc32 = crc32.strip()[:64]
    checks.want_crc32 = CRC32_HEADER in request.headers.get("x-amz-trailer", "").lower()
    length = content_length(request)
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if length is None and not chunked:
        raise ObjectError("MissingContentLength", "you must provide the Content-Length "
                          "HTTP header", 411)
    if is_aws_chunked(request):
        checks.length = _uint(request.headers.get("x-amz-decoded-content-length"),
                              "x-amz-decoded-content-length")
        if checks.length is None:
            raise ObjectError("MissingContentLength",
                              "aws-chunked bodies need x-amz-decoded-content-length", 411)
        checks.sha256 = None  # it names the framing, not the payload
        return decode_aws_chunked(body_chunks(request), checks), checks
    checks.length = length
    return body_chunks(request), checks


def content_type(request: web.BaseRequest) -> str | None:
    value = request.headers.get("Content-Type")
    if value is None or len(value) > MAX_CONTENT_TYPE or not value.isprintable():
        return None
    return value


async def decode_aws_chunked(chunks: AsyncIterator[bytes],
                             checks: Checks | None = None) -> AsyncIterator[bytes]:
    """The payload of an aws-chunked body: `<hex size>[;ext]\\r\\n<data>\\r\\n` ...
    `0[;ext]\\r\\n[trailers]\\r\\n`. Data is passed on in the pieces it arrived
    in (sliced at frame edges, never joined); headers and trailers are bounded.
    A trailing x-amz-checksum-crc32 goes into `checks`, checked once the body ends."""
    size_line = bytearray()
    trailer = bytearray()
    remaining = 0  # data bytes left in the current frame
    crlf = 0  # bytes of the CRLF after a frame's data still to come
    state = "size"
    async for piece in chunks:
        view = memoryview(piece)
        i, n = 0, len(piece)
        while i < n:
            if state == "data":
                take = min(remaining, n - i)
                yield piece if take == n else bytes(view[i:i + take])
                i += take
                remaining -= take
                if remaining == 0:
                    state, crlf = "crlf", 2
            elif state == "crlf":
                expected = b"\r\n"[2 - crlf]
                if piece[i] != expected:
                    raise _framing("missing CRLF after a chunk")
                i += 1
                crlf -= 1
                if crlf == 0:
                    state = "size"
            elif state == "size":
                end = piece.find(b"\n", i)
                size_line += view[i:n if end < 0 else end + 1]
                if len(size_line) > MAX_LINE:
                    raise _framing("chunk header too long")
                i = n if end < 0 else end + 1
                if end >= 0:
                    remaining = _frame_size(bytes(size_line))
                    size_line.clear()
                    state = "data" if remaining else "trailer"
            elif state == "trailer":
                trailer += view[i:n]
                i = n
                if len(trailer) > MAX_TRAILER:
                    raise _framing("trailer too long")
                if trailer == b"\r\n" or trailer.endswith(b"\r\n\r\n"):
                    state = "done"
                elif trailer.startswith(b"\r\n") and len(trailer) > 2:
                    raise _framing("bytes after the last chunk")
            else:
                raise _framing("bytes after the last chunk")
    if state != "done":
        raise _framing("the body ended inside a chunk")
    if checks is not None:
        for line in bytes(trailer).split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == CRC32_HEADER.encode():
                checks.crc32 = value.strip().decode("ascii", "replace")[:64]


def _frame_size(line: bytes) -> int:
    text = line.rstrip(b"\r\n").split(b";", 1)[0].strip()
    if not text or len(text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in text):
        raise _framing("invalid chunk size")
    return int(text, 16)
