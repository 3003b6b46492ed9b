"""Sizes as people read them (a leaf: anything may import it)."""

from __future__ import annotations


def human_size(n: float) -> str:
    """`512 B`, `3.4 MiB`, `1536.0 GiB`: powers of 1024, GiB the largest unit."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
