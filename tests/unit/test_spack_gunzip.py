"""GunzipHasher: the diff_id of a gzip stream, with bounded memory and work."""

from __future__ import annotations

import gzip
import hashlib
import os
import tracemalloc
import zlib

import pytest

from registry.spack.gunzip import MIN_LIMIT, GunzipHasher, NotGzip


def digest_of(stream: bytes, chunk: int) -> str:
    h = GunzipHasher(len(stream))
    for i in range(0, len(stream), chunk):
        h.update(stream[i:i + chunk])
    return h.hexdigest()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_hashes_what_the_stream_inflates_to(chunk):
    data = os.urandom(50_000) + b"\0" * 3_000_000
    stream = gzip.compress(data)
    assert digest_of(stream, chunk) == hashlib.sha256(data).hexdigest()


def test_members_are_one_stream():
    stream = gzip.compress(b"first ") + gzip.compress(b"second")
    assert digest_of(stream, 5) == hashlib.sha256(b"first second").hexdigest()


@pytest.mark.parametrize("stream", [b"", b"not gzip at all", gzip.compress(b"x" * 1000)[:-12]])
def test_not_gzip_or_truncated_is_refused(stream):
    with pytest.raises(NotGzip):
        digest_of(stream, 100)


def test_a_bomb_is_refused_in_bounded_memory():
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1 << 20)
    bomb = b"".join(z.compress(zeros) for _ in range(MIN_LIMIT // len(zeros) + 8)) + z.flush()
    assert len(bomb) < 1 << 20  # a MiB that would inflate past the limit
    tracemalloc.start()
    try:
        with pytest.raises(NotGzip, match="beyond"):
            digest_of(bomb, len(bomb))  # one chunk: the whole bomb at once
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
