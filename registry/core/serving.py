"""Serving plans: what to send for a blob GET or HEAD, decided in one core call.

`BlobStore.serve` (and anything that wraps it, such as the node cache) answers
"what do I send for this repository, digest and range" with a `BlobPlan`; the
HTTP layer only renders it. The body is one of:

* `LocalFile`: a region of an open local file, sent with sendfile. With a
  `progress`, the file is still being written (a node cache following its own
  download): the sender waits for bytes past what it has sent instead of
  taking the end of the file for the end of the blob.
* `Redirect`: a URL the client fetches the bytes from itself (a presigned S3 URL).
* `ByteStream`: bytes read from the store in bounded chunks.
* None: a HEAD, or a plan that only needs the size.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from registry.core.grammar import Digest
from registry.core.ranges import ByteRange


class Progress(Protocol):
    """How far a file that is still being written has got. Called from the
    sendfile threads, so it blocks (with a timeout) rather than awaits."""

    def wait_beyond(self, offset: int, timeout: float) -> int:
        """Block until more than `offset` bytes are in the file, or it is complete;
        return how many bytes it has. Raises when the writer failed (the bytes
        will never come), TimeoutError when nothing arrived within `timeout`."""
        ...


@dataclass(slots=True)
class LocalFile:
    """An open file descriptor the renderer sends from (and closes). `on_done` is
    called once when the request is over (`BlobPlan.close`): whoever made the plan
    can hold the file until then (the node cache does not evict a blob in use)."""

    fd: int
    progress: Progress | None = None
    on_done: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    url: str


@dataclass(frozen=True, slots=True)
class ByteStream:
    chunks: AsyncIterator[bytes]


Body = LocalFile | Redirect | ByteStream


class Sendable:
    """What every serving plan shares (blob plans here, S3 object plans in
    core/types.py): a byte range of a whole of `total` bytes, and a body that may
    hold an open descriptor until the renderer takes it."""

    __slots__ = ()
    range: ByteRange | None
    body: Body | None

    @property
    def total(self) -> int:
        raise NotImplementedError

    @property
    def offset(self) -> int:
        return self.range.start if self.range is not None else 0

    @property
    def length(self) -> int:
        return self.range.length if self.range is not None else self.total

    def take_fd(self) -> int | None:
        """The local file descriptor, now owned by the caller (None if there is none)."""
        if isinstance(self.body, LocalFile) and self.body.fd >= 0:
            fd, self.body.fd = self.body.fd, -1
            return fd
        return None

    async def close(self) -> None:
        """The request is over: release a descriptor nobody took (a 304, an error
        before sending), and tell the plan's maker (`LocalFile.on_done`)."""
        fd = self.take_fd()
        if isinstance(self.body, LocalFile) and self.body.on_done is not None:
            done, self.body.on_done = self.body.on_done, None
            done()
        if fd is not None:
            await asyncio.to_thread(os.close, fd)


@dataclass(slots=True)
class BlobPlan(Sendable):
    """The answer to one blob request: the blob's digest and total size, the byte
    range asked for (None: all of it), and how to send it."""

    digest: Digest
    size: int
    range: ByteRange | None = None
    body: Body | None = None

    @property
    def total(self) -> int:
        return self.size
