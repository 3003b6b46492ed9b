"""Work on large inputs, kept off the event loop.

Checking and sorting 100,000 names (a Spack build cache's tags) takes ~0.2 s, and
every other request would wait that long on the event loop meanwhile; the same
work on a few names is cheaper than the hop to a worker thread. So each caller
says whether its input is large, and only then is the work sent to a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import ParamSpec, TypeVar

# Name lists and pages longer than this are handled on a worker thread.
BIG_LIST = 2_000

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop_if(heavy: bool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """fn(*args, **kwargs): on a worker thread when `heavy`, inline otherwise."""
    if heavy:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


async def valid_sorted(names: Collection[str], is_valid: Callable[[str], object]) -> list[str]:
    """The names for which `is_valid` is true, sorted."""
    def work() -> list[str]:
        return sorted(n for n in names if is_valid(n))

    return await off_loop_if(len(names) > BIG_LIST, work)
