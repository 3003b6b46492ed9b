"""The core services, in process, over the in-memory driver: no server, no disk.

Every test here runs under blockbuster (any blocking call made by registry code
on the event loop raises), and gets `reg`, a registry over a counting wrapper of
the memory driver, so a test can assert how many store calls something costs."""

from __future__ import annotations

import pytest
from blockbuster import blockbuster_ctx

from registry.core.factory import build_registry
from registry.storage.base import CheckedDriver
from registry.storage.memory import MemoryDriver


@pytest.fixture(autouse=True)
def no_blocking():
    with blockbuster_ctx(["registry"]):
        yield


@pytest.fixture
def driver() -> CheckedDriver:
    return CheckedDriver(MemoryDriver())


@pytest.fixture
def reg(driver):
    return build_registry(driver)
