"""Fixtures several unit-test modules share."""

import pytest

from registry.arch.indexed import describer
from registry.index.db import Index


@pytest.fixture
async def index(tmp_path):
    """An opened index in `tmp_path` with the arch room's describer (build rows filled);
    a module that needs another index defines its own `index` fixture."""
    idx = Index(tmp_path / "index.sqlite", describer)
    await idx.open()
    yield idx
    await idx.close()
