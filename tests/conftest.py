"""Fixtures that run a real registry process on 127.0.0.1 for the tests to talk to.

`registry` is one server shared by the whole session; `start_registry` starts
extra servers with their own config (auto_mount off, TLS, small limits, ...).
Set REGISTRY_TEST_EXTERNAL=host:port to point the shared fixture at a registry
started elsewhere (useful to compare against a reference registry by hand).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RunningRegistry, free_port, launch, wait_ready

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
