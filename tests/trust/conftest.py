"""The trust room's tests: verification over the core services on the memory driver
(no server), under blockbuster like tests/core; HTTP tests start their own app."""

from __future__ import annotations

import pytest
from blockbuster import blockbuster_ctx

from registry.core.factory import build_registry
from registry.storage.memory import MemoryDriver


@pytest.fixture
def no_blocking():
    with blockbuster_ctx(["registry"]):
        yield


@pytest.fixture
def reg(no_blocking):
    return build_registry(MemoryDriver())
