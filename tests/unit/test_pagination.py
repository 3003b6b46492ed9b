import pytest

from registry.core.errors import RegistryError
from registry.core.pagination import page, parse_n, render, render_page

ITEMS = ["a", "b", "c", "d", "e"]


def test_page_all():
    assert page(ITEMS, None, None) == (ITEMS, False)


def test_page_n_and_last():
    assert page(ITEMS, 2, None) == (["a", "b"], True)
    assert page(ITEMS, 2, "b") == (["c", "d"], True)
    assert page(ITEMS, 2, "d") == (["e"], False)
    assert page(ITEMS, 5, None) == (ITEMS, False)
    assert page(ITEMS, 2, "bb") == (["c", "d"], True)  # last need not exist


def test_page_zero():
    assert page(ITEMS, 0, None) == ([], False)


def test_walk_pages_visits_each_once():
    seen, last = [], None
    while True:
        chunk, more = page(ITEMS, 2, last)
        seen += chunk
        if not more:
            break
        last = chunk[-1]
    assert seen == ITEMS


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "9" * 12])
def test_bad_n(value):
    with pytest.raises(RegistryError):
        parse_n(value)


def test_n_capped():
    assert parse_n("999999") == 10_000
    assert parse_n(None) is None


@pytest.mark.parametrize(("count", "n"), [(10, None), (5_000, None), (5_000, 100),
                                          (5_000, 4_000), (5_000, 0)])
async def test_render_page_inline_or_threaded_is_render(count, n):
    items = [f"t{i:05d}" for i in range(count)]
    args = (items, n, "t00007", "/v2/r/tags/list", "tags", {"name": "r"})
    assert await render_page(*args) == render(*args)
