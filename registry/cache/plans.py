"""Reading a small blob whole through a `Blobs` service's serving plan.

For a node cache, `serve` is the path a client's GET takes: a blob not held yet is
fetched from the upstream once and kept, and its file is followed while it downloads.
Used for image configs (a few KiB), which describing a build needs in hand.
"""

from __future__ import annotations

import asyncio
import os

from registry.core.errors import BlobUnknown
from registry.core.grammar import Digest
from registry.core.protocols import Blobs
from registry.core.serving import LocalFile, Progress

WAIT_S = 60.0  # a download that makes no progress this long fails the read


async def read_small(blobs: Blobs, repo: str, digest: Digest, max_bytes: int) -> bytes:
    """A small blob's bytes (a config) through `blobs.serve`: for a node cache, the
    path a client's GET takes, so a blob not here yet is fetched once and kept."""
    plan = await blobs.serve(repo, digest)
    try:
        if plan.size > max_bytes:
            raise BlobUnknown("blob too large to read whole", {"digest": str(digest)})
        body = plan.body
        if isinstance(body, LocalFile):
            fd = plan.take_fd()
            if fd is not None:
                return await asyncio.to_thread(_read_fd, fd, plan.size, body.progress)
        return await blobs.read(digest, max_bytes)  # not a local file: the store reads it
    finally:
        await plan.close()


def _read_fd(fd: int, size: int, progress: Progress | None) -> bytes:
    """`size` bytes of a file that may still be downloading (then followed to its end)."""
    try:
        have = 0
        while progress is not None and have < size:
            have = progress.wait_beyond(have, WAIT_S)
        chunks: list[bytes] = []
        got = 0
        while got < size:
            chunk = os.pread(fd, size - got, got)
            if not chunk:
                raise BlobUnknown("blob shorter than its size", {"size": size})
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
