"""A layer's tar stream, whatever its compression: detected by magic bytes (a
media type can lie), inflated a bounded step at a time, to a bounded total.

gzip (RFC 1952, concatenated members too), zstd (every frame) and plain tar are
read; bzip2 and xz are named and refused. A deflate stream expands up to ~1000x,
so output is taken in steps of at most the reader's request, never a whole
input chunk's worth at once; the total is capped by `Limits.inflated`.
"""

from __future__ import annotations

import zlib
from typing import IO, Protocol, cast

import zstandard

from registry.scan.limits import LayerError

GZIP = b"\x1f\x8b"
ZSTD = b"\x28\xb5\x2f\xfd"
REFUSED = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}


class Readable(Protocol):
    """`read(n)`: at most n bytes, b"" at the end."""

    def read(self, n: int) -> bytes: ...


class _Peeked:
    """A reader whose first bytes were looked at and are given back first."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int) -> bytes:
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._rest.read(n)


class _Gunzip:
    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""  # compressed input not yet given to zlib

    def read(self, n: int) -> bytes:
        while True:
            if self._z.eof:
                rest = self._z.unused_data or self._raw.read(1 << 16)
                if not rest or not rest.startswith(GZIP[:len(rest)]):
                    return b""  # the end (bytes after the last member are ignored)
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._pending = rest
            if not self._pending:
                self._pending = self._z.unconsumed_tail or self._raw.read(1 << 16)
                if not self._pending:
                    raise LayerError("truncated gzip stream")
            try:
                out = self._z.decompress(self._pending, n)
            except zlib.error as exc:
                raise LayerError(f"corrupt gzip stream: {exc}") from None
            self._pending = self._z.unconsumed_tail
            if out:
                return out


class _Unzstd:
    def __init__(self, raw: Readable) -> None:
        # stream_reader needs only `read`; its stubs ask for a file
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], raw), read_size=1 << 16, read_across_frames=True)
        self._raw = raw

    def read(self, n: int) -> bytes:
        try:
            return self._reader.read(n)
        except zstandard.ZstdError as exc:
            raise LayerError(f"corrupt zstd stream: {exc}") from None


class Inflated:
    """The tar bytes of a layer read from `raw`, at most `limit` of them."""

    def __init__(self, raw: Readable, limit: int) -> None:
        head = raw.read(6)
        while len(head) < 6 and (more := raw.read(6 - len(head))):
            head += more
        source: Readable = _Peeked(head, raw)
        for magic, name in REFUSED.items():
            if head.startswith(magic):
                raise LayerError(f"{name} layers are not read")
        if head.startswith(GZIP):
            self.compression = "gzip"
            source = _Gunzip(source)
        elif head.startswith(ZSTD):
            self.compression = "zstd"
            source = _Unzstd(source)
        else:
            self.compression = "none"
        self._source = source
        self.limit = limit
        self.size = 0

    def read(self, n: int) -> bytes:
        out = self._source.read(min(n, self.limit + 1 - self.size))
        self.size += len(out)
        if self.size > self.limit:
            raise LayerError(f"inflates beyond {self.limit} bytes (a decompression bomb?)")
        return out
