"""Parsing of the two range headers the registry meets.

* `Content-Range` on a chunked upload PATCH: the spec says `^[0-9]+-[0-9]+$`,
  inclusive; a few clients add a `bytes ` prefix or a `/total` suffix, which
  we tolerate because the meaning stays unambiguous.
* `Range` on a blob GET (RFC 9110): a single `bytes=` range. Several ranges
  are legal but no client of a registry sends them; we answer those with the
  whole blob, which RFC 9110 allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.core.errors import BlobUploadInvalid

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]{1,19}|\*))?")
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def parse_content_range(value: str) -> tuple[int, int]:
    """Return (start, end) inclusive; BlobUploadInvalid when malformed."""
    m = _CONTENT_RANGE.fullmatch(value.strip())
    if not m:
        raise BlobUploadInvalid("invalid Content-Range", {"Content-Range": value[:100]})
    start, end = int(m.group(1)), int(m.group(2))
    if end < start:
        raise BlobUploadInvalid("invalid Content-Range", {"Content-Range": value[:100]})
    return start, end


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """The Range header asks for bytes the blob does not have (answer 416)."""


def parse_range(value: str | None, size: int) -> ByteRange | None:
    """The requested range of a blob of `size` bytes, or None for the whole blob.

    Raises Unsatisfiable for a well-formed range outside the blob; anything we
    cannot parse is ignored (RFC 9110 lets a server ignore Range).
    """
    if not value:
        return None
    m = _RANGE.fullmatch(value.strip())
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    if last != "" and int(last) < start:
        return None  # invalid range-spec: ignore the header
    if start >= size:
        raise Unsatisfiable
    end = size - 1 if last == "" else int(last)
    return ByteRange(start, min(end, size - 1))
