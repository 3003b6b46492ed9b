"""A blob's async stream read from a worker thread, a `read(n)` at a time.

The scan decompresses and parses in a thread (the event loop keeps serving); the
bytes still come from core's `Blobs.reader` on the loop, one chunk per call, so
at most one chunk is held. `stop` ends a read when the scan is cancelled (the
loop may be going away: the thread must not wait on it forever).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator

from registry.scan.limits import LayerError


class Stopped(Exception):
    """The scan was cancelled while a thread waited for bytes."""


class LoopReader:
    """`read(n)` (at most n bytes, b"" at the end) over an async iterator of chunks
    that lives on `loop`; called from another thread only."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop,
                 stop: threading.Event) -> None:
        self._chunks = chunks
        self._loop = loop
        self._stop = stop
        self._buf = memoryview(b"")
        self._done = False
        self.count = 0  # bytes read so far

    async def _next(self) -> bytes | None:
        return await anext(self._chunks, None)

    def _fetch(self) -> bytes | None:
        future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
        while True:
            if self._stop.is_set():
                future.cancel()
                raise Stopped("scan cancelled")
            try:
                return future.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                continue
            except Exception as exc:  # the store's error (a blob gone, a read failing)
                raise LayerError(f"blob unreadable: {type(exc).__name__}: {exc}"[:300]) \
                    from None

    def read(self, n: int) -> bytes:
        while not self._buf and not self._done:
            chunk = self._fetch()
            if chunk is None:
                self._done = True
            else:
                self._buf = memoryview(chunk)
        out = bytes(self._buf[:n])
        self._buf = self._buf[len(out):]
        self.count += len(out)
        return out

    async def close(self) -> None:
        """Close the chunk iterator (on the loop, after the thread is done)."""
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except RuntimeError:  # cancelled while the thread's read still runs
                pass
