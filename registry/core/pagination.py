"""The `n` / `last` pagination shared by the tags list and the catalog."""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from registry.core.errors import RegistryError
from registry.core.offload import BIG_LIST, off_loop_if

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


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One page as it goes on the wire: the JSON body and the Link header, if any."""

    body: bytes
    link: str | None
    total: int  # items in the whole list, not just this page

    def __len__(self) -> int:
        return len(self.body)


def render(items: list[str], n: int | None, last: str | None, path: str, key: str,
           extra: dict[str, Any]) -> RenderedPage:
    """The page of `items` after `last` as `{**extra, key: [...]}`, with a Link to the
    next page at `path` when more remain."""
    chunk, more = page(items, n, last)
    link = None
    if more and chunk:
        link = f'<{path}?n={n}&last={quote(chunk[-1], safe="")}>; rel="next"'
    return RenderedPage(json.dumps({**extra, key: chunk}).encode(), link, len(items))


async def render_page(items: list[str], n: int | None, last: str | None, path: str,
                      key: str, extra: dict[str, Any]) -> RenderedPage:
    """render(), on a worker thread when the page itself is long (an unpaginated
    listing of a 100,000-tag Spack build cache takes ~70 ms to encode); a page of
    100 from the same list costs microseconds and stays inline."""
    size = len(items) if n is None else min(n, len(items))
    return await off_loop_if(size > BIG_LIST, render, items, n, last, path, key, extra)
