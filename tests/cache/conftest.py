"""Node-cache fixtures: an origin registry process of ours (with an access log, so its
upstream GETs can be counted), node caches in front of it, and a fake upstream for
the faults a real registry does not produce on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cache_helpers import ORIGIN_CONFIG, assert_clean_log, cache_config
from fake_upstream import FakeUpstream
from harness import RunningRegistry


@pytest.fixture
def origin(start_registry) -> RunningRegistry:
    return start_registry(config=ORIGIN_CONFIG)


@pytest.fixture
def start_cache(start_registry, tmp_path_factory) -> Iterator[Callable[..., RunningRegistry]]:
    """start_cache(upstream_url, tag_ttl=60, extra="") -> a node cache registry process."""
    started: list[RunningRegistry] = []

    def start(upstream: str, tag_ttl: int = 60, extra: str = "",
              port: int | None = None) -> RunningRegistry:
        tmp = tmp_path_factory.mktemp("node-cache")
        reg = start_registry(tmp, config=cache_config(upstream, tmp / "cache", tag_ttl, extra),
                             port=port)
        reg.cache_dir = tmp / "cache"  # type: ignore[attr-defined]
        started.append(reg)
        return reg

    yield start
    for reg in started:
        assert_clean_log(reg)


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    yield fake
    fake.stop()
