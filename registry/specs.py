"""The one-line rules the config file holds, `[limits] quotas` ("team/* 50GiB") and
`[gc] retention` ("ci/* keep=10 days=7"), parsed by one piece of code for the config
check and for the services that apply them (a leaf: anything may import it), so
that what `registry config check` accepts is exactly what `registry serve` runs."""

from __future__ import annotations

import re

from registry.units import parse_size

_RETENTION_PART = re.compile(r"(keep|days)=(\d+(?:\.\d+)?)")


def parse_quota(text: str) -> tuple[str, int]:
    """(pattern, bytes) of `PATTERN SIZE`; a pattern has no spaces, a size may
    (`team/* 2 GiB`)."""
    pattern, _, size = text.strip().partition(" ")
    try:
        if not pattern or not size.strip():
            raise ValueError
        return pattern, parse_size(size.strip())
    except ValueError:
        raise ValueError(f'expected "PATTERN SIZE" like "team/* 50GiB", got {text!r}') \
            from None


def parse_retention(text: str) -> tuple[str, int | None, float | None]:
    """(pattern, keep, days) of `PATTERN keep=N days=D` (either or both)."""
    words = text.split()
    problem = (f'expected "PATTERN keep=N days=D" (either or both) like '
               f'"ci/* keep=10 days=7", got {text!r}')
    if len(words) < 2:
        raise ValueError(problem)
    keep: int | None = None
    days: float | None = None
    for word in words[1:]:
        m = _RETENTION_PART.fullmatch(word)
        if m is None:
            raise ValueError(problem)
        if m.group(1) == "keep":
            if "." in m.group(2):
                raise ValueError(f"keep= takes a whole number, got {word!r} in {text!r}")
            keep = int(m.group(2))
        else:
            days = float(m.group(2))
    return words[0], keep, days
