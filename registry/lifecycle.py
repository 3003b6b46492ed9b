"""Background tasks that live exactly as long as the services they serve, the
drain of the work in flight when a server stops, and whether a process is still
there."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
# Seconds a cancelled background task gets before it is cancelled again.
RECANCEL_S = 1.0


@contextlib.asynccontextmanager
async def background(coro: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `coro` as a task inside the block; cancel it and wait for it on exit."""
    task = asyncio.get_running_loop().create_task(coro)
    try:
        yield
    finally:
        # Again until it ends: a task can lose a cancel (asyncio.wait_for on Python
        # 3.11 drops one landing as its inner await completes) and run on, and then
        # this block, the server's shutdown with it, would never end.
        while not task.done():
            task.cancel()
            await asyncio.wait((task,), timeout=RECANCEL_S)
        with contextlib.suppress(asyncio.CancelledError):
            await task


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Stopping(ConnectionResetError):
    """A request body cut off by the server itself, at the end of its drain: for the
    code reading it, the same as a client gone midway (what arrived is kept)."""


class InFlight(Generic[T]):
    """The requests (or other work) in progress, by key, so that a stop can let them
    finish for a while (a drain) and then cut the ones still running."""

    __slots__ = ("_idle", "items", "stopping")

    def __init__(self) -> None:
        # Added to and removed from directly (`items[key] = item`, `del items[key]`,
        # then `if stopping: left()`): the request path saves a call per request.
        self.items: dict[int, T] = {}
        self.stopping = False
        self._idle: asyncio.Event | None = None  # set once draining and nothing is left

    def left(self) -> None:
        """Note, while draining, that an item was removed from `items`."""
        if self._idle is not None and not self.items:
            self._idle.set()

    async def drain(self, seconds: float, cut: Callable[[T], None], grace: float) -> int:
        """Wait up to `seconds` for everything in flight to be done, then `cut` what
        is left and give it up to `grace` seconds more to wind up (to keep what it
        received). Returns how many were cut."""
        self.stopping = True
        idle = self._idle = asyncio.Event()
        if not self.items:
            idle.set()
        if await _within(idle, seconds):
            return 0
        left = list(self.items.values())
        for item in left:
            cut(item)
        await _within(idle, grace)
        return len(left)


async def _within(event: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
