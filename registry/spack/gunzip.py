"""The sha256 of a gzip stream's decompressed bytes (an OCI layer's diff_id),
with bounded memory and a bound on the work a hostile stream can cause.

A deflate stream expands up to ~1000x: one 1 MiB chunk of a crafted tarball
would inflate to a gigabyte in a single `decompress` call. Output is taken in
steps of STEP bytes, and the total is capped relative to the compressed size.
Concatenated gzip members (allowed by RFC 1952) are hashed as one stream.
"""

from __future__ import annotations

import hashlib
import zlib

STEP = 1 << 20
# Spack tarballs compress 2-10x; a ratio far beyond that is a bomb, not a build.
MAX_RATIO = 200
MIN_LIMIT = 256 << 20


class NotGzip(ValueError):
    """The stream is not gzip, is truncated, or inflates beyond the bound."""


class GunzipHasher:
    """Feed compressed chunks with `update`, then `hexdigest()` of what they inflate to."""

    def __init__(self, compressed_size: int) -> None:
        self.limit = max(MIN_LIMIT, MAX_RATIO * compressed_size)
        self.size = 0  # bytes inflated so far
        self._hash = hashlib.sha256()
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._started = False

    def update(self, chunk: bytes) -> None:
        data = chunk
        while data:
            if self._inflate.eof:  # the next member of a multi-member stream
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._started = True
            try:
                out = self._inflate.decompress(data, STEP)
                self._take(out)
                while len(out) == STEP and not self._inflate.unconsumed_tail \
                        and not self._inflate.eof:  # output still pending in zlib
                    out = self._inflate.decompress(b"", STEP)
                    self._take(out)
            except zlib.error as exc:
                raise NotGzip(f"not gzip: {exc}") from None
            data = self._inflate.unused_data if self._inflate.eof else \
                self._inflate.unconsumed_tail

    def _take(self, out: bytes) -> None:
        self.size += len(out)
        if self.size > self.limit:
            raise NotGzip(f"inflates beyond {self.limit} bytes")
        self._hash.update(out)

    def hexdigest(self) -> str:
        if not self._started or not self._inflate.eof:
            raise NotGzip("truncated gzip stream")
        return self._hash.hexdigest()
