"""Sizes as people read and write them (a leaf: anything may import it)."""

from __future__ import annotations

import re

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B?)", re.IGNORECASE)
_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def parse_size(text: str) -> int:
    """Bytes in `50GiB`, `1.5T`, `500MB`, `1024` (powers of 1024 throughout)."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"expected a size like 50GiB or 500MiB, got {text!r}")
    return int(float(m.group(1)) * 1024 ** _UNITS[m.group(2).upper()])


def human_size(n: float) -> str:
    """`512 B`, `3.4 MiB`, `1536.0 GiB`: powers of 1024, GiB the largest unit."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
