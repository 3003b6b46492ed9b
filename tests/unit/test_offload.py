"""Off-loop helpers give the same answers inline and on a worker thread."""

from __future__ import annotations

import random

import pytest

from registry.core.grammar import NAME_RE, is_valid_tag
from registry.core.offload import BIG_LIST, off_loop_if, valid_sorted


@pytest.mark.parametrize("count", [0, 5, BIG_LIST, BIG_LIST + 1, 3 * BIG_LIST])
async def test_valid_sorted_inline_and_threaded(count: int) -> None:
    rng = random.Random(count)
    names = [f"n{rng.randrange(10**6)}" for _ in range(count)] + ["Bad/Name", "-x", ".."]
    rng.shuffle(names)
    tags = await valid_sorted(names, is_valid_tag)
    assert tags == sorted(n for n in names if is_valid_tag(n))
    repos = await valid_sorted(set(names), NAME_RE.fullmatch)
    assert repos == sorted(n for n in set(names) if NAME_RE.fullmatch(n))
    assert "Bad/Name" not in repos and ".." not in tags


async def test_off_loop_if_runs_inline_or_on_a_thread() -> None:
    import threading

    main = threading.get_ident()
    assert await off_loop_if(False, threading.get_ident) == main
    assert await off_loop_if(True, threading.get_ident) != main
    with pytest.raises(ZeroDivisionError):
        await off_loop_if(True, divmod, 1, 0)
