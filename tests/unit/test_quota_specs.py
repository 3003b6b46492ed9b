"""Quota specs: sizes and patterns."""

from __future__ import annotations

import pytest

from registry.core.quotas import Quota, parse_size


@pytest.mark.parametrize("text,want", [
    ("1024", 1024), ("1KiB", 1024), ("1k", 1024), ("50GiB", 50 << 30),
    ("1.5T", int(1.5 * (1 << 40))), ("500MB", 500 << 20), ("2 GiB", 2 << 30),
])
def test_sizes(text, want):
    assert parse_size(text) == want


@pytest.mark.parametrize("bad", ["", "lots", "-1GiB", "1XB", "GiB"])
def test_bad_sizes(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_quota_patterns():
    q = Quota.parse("team/* 50GiB")
    assert q == Quota("team/*", 50 << 30)
    assert q.covers("team/app") and q.covers("team/deep/app") and not q.covers("teams/app")
    with pytest.raises(ValueError):
        Quota.parse("50GiB")
