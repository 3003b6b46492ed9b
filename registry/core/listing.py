"""Checking and sorting long name lists without stalling the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

# Past this many names the work goes to a worker thread: a Spack build cache can
# hold 100,000 tags, which take ~0.2 s to check and sort, and every other request
# would wait that long on the event loop meanwhile.
BIG_LIST = 2_000


async def valid_sorted(names: Collection[str], is_valid: Callable[[str], object]) -> list[str]:
    """The names for which `is_valid` is true, sorted."""
    def work() -> list[str]:
        return sorted(n for n in names if is_valid(n))

    return await asyncio.to_thread(work) if len(names) > BIG_LIST else work()
