"""The `n` / `last` pagination shared by the tags list and the catalog."""

from __future__ import annotations

from bisect import bisect_right

from registry.core.errors import RegistryError

# Upper bound on one page, whatever the client asks for.
MAX_PAGE = 10_000


def parse_n(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise RegistryError("n must be a non-negative integer", {"n": value[:20]})
    return min(int(value), MAX_PAGE)


def page(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Items after `last` (exclusive), at most n of them, and whether more remain.

    `items` must be sorted in the order the API returns them.
    """
    start = bisect_right(items, last) if last else 0
    if n is None:
        return items[start:], False
    chunk = items[start:start + n]
    return chunk, n > 0 and start + n < len(items)
