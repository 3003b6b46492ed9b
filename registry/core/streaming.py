"""Streaming a request body into storage while hashing it: the one pump every
write path uses (OCI uploads in core.uploads, S3 objects and parts in
core.object_writes), so neither family depends on the other's module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from registry.storage.driver import FileWriter

# Bytes handed to a worker thread at a time: large enough that thread hops
# are negligible, small enough that memory per request stays bounded.
BLOCK = 4 << 20
# Blocks hashed or written at once per upload (the lanes may drift this far apart).
DEPTH = 3


class Hasher(Protocol):
    """What the pump feeds: hashlib's objects, or several of them together."""

    def update(self, data: bytes, /) -> None: ...


async def pump(chunks: AsyncIterator[bytes], writer: FileWriter, hasher: Hasher | None,
               keep: Callable[[BaseException], bool] | None = None) -> int:
    """Copy chunks to the writer in BLOCK-sized pieces while hashing them. When the
    body fails and `keep(exc)` says so, what arrived is written out before the
    exception goes on (a chunk cut off: see UploadService.append).

    Hashing and writing are two lanes, each handling its blocks in order on a
    worker thread, so that neither waits for the other (a write stalled by the
    disk does not idle the hash, the usual bound) while the event loop goes on
    reading the body. At most DEPTH blocks are in flight: memory stays bounded."""
    loop = asyncio.get_running_loop()
    writev = getattr(writer, "writev", None)
    inflight: deque[tuple[asyncio.Future[None], asyncio.Future[None] | None]] = deque()
    last_hash: asyncio.Future[None] | None = None
    last_write: asyncio.Future[None] | None = None

    def hash_all(into: Hasher, block: list[bytes]) -> None:
        for piece in block:
            into.update(piece)

    async def write_all(block: list[bytes]) -> None:
        if writev is not None:
            await writev(block)
        else:
            await writer.write(b"".join(block))

    async def after(previous: asyncio.Future[None] | None,
                    step: Callable[[], Awaitable[None]]) -> None:
        if previous is not None:
            await previous  # lanes keep block order; a failure propagates down the lane
        await step()

    def dispatch(block: list[bytes]) -> None:
        nonlocal last_hash, last_write
        last_write = asyncio.ensure_future(after(last_write, lambda: write_all(block)))
        if hasher is not None:
            into = hasher
            last_hash = asyncio.ensure_future(after(
                last_hash, lambda: loop.run_in_executor(None, hash_all, into, block)))
        inflight.append((last_write, last_hash if hasher is not None else None))

    async def settle(limit: int) -> None:
        while len(inflight) > limit:
            w, h = inflight.popleft()
            await w
            if h is not None:
                await h

    written = 0
    buf: list[bytes] = []
    buffered = 0
    try:
        async for chunk in chunks:
            buf.append(chunk)
            buffered += len(chunk)
            written += len(chunk)
            if buffered >= BLOCK:
                await settle(DEPTH - 1)
                dispatch(buf)
                buf, buffered = [], 0
        if buf:
            dispatch(buf)
        await settle(0)
    except BaseException as exc:
        if keep is not None and keep(exc):
            with contextlib.suppress(BaseException):
                await settle(0)
                if buf:
                    await write_all(buf)
        for w, h in inflight:
            for fut in (w, h):
                if fut is not None and not fut.done():
                    fut.cancel()
        for w, h in inflight:
            for fut in (w, h):
                if fut is not None:
                    with contextlib.suppress(BaseException):
                        await fut
        raise
    return written
