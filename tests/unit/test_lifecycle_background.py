"""A background task that loses a cancel still ends with its block.

Regression (issue 24): asyncio.wait_for on Python 3.11 drops a cancel that lands as
its inner await completes; a housekeeping loop built on it (the S3 driver's calls,
the scan worker's wait) then ran on, `background` awaited it forever, and a worker
that got SIGTERM sat on an idle event loop and never exited."""

from __future__ import annotations

import asyncio

from registry.lifecycle import background


async def test_a_task_that_swallows_a_cancel_is_cancelled_again():
    rounds = 0
    swallowed = asyncio.Event()

    async def loop_losing_one_cancel() -> None:
        nonlocal rounds
        lost = False
        while True:
            rounds += 1
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost = True  # what wait_for does: the cancel is gone, the loop goes on
                swallowed.set()

    async def block() -> None:
        async with background(loop_losing_one_cancel()):
            await asyncio.sleep(0.05)

    stop = asyncio.create_task(block())
    # Only a deadline to keep a failure from hanging the suite (the end is ~1 s).
    done, _ = await asyncio.wait((stop,), timeout=20)
    if not done:  # the old way: cancelling the block's wait cancels the task again
        stop.cancel()
    assert done, "the block never ended: its background task lost the cancel"
    assert swallowed.is_set() and rounds > 1
