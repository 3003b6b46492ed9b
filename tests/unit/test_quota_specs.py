"""Quota specs: sizes and patterns."""

from __future__ import annotations

import pytest

from registry.core.quotas import Quota
from registry.units import parse_size


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


def test_what_the_config_check_accepts_the_server_runs(tmp_path):
    """`registry config check` and the quota decorator read a quota with one parser:
    a size written with a space ("2 GiB") passed the check's regex and then failed
    Quota.parse at start-up, with a traceback."""
    from registry.config import ConfigError, load

    f = tmp_path / "r.toml"
    f.write_text('[limits]\nquotas = ["team/* 2 GiB", "ci/* 500MiB"]\n')
    quotas = [Quota.parse(q) for q in load(f, env={}).limits.quotas]
    assert quotas == [Quota("team/*", 2 << 30), Quota("ci/*", 500 << 20)]
    for bad in ("team/*", "team/* lots", "50GiB", "team/* 2 GiB extra"):
        f.write_text(f'[limits]\nquotas = ["{bad}"]\n')
        with pytest.raises(ConfigError) as info:
            load(f, env={})
        assert "[limits] quotas" in info.value.problems[0] and bad in info.value.problems[0]
        with pytest.raises(ValueError):
            Quota.parse(bad)
