"""The spack tests run the whole application in this process (tests/inprocess's
`app` fixture, under blockbuster) and push like spack does (tests/pushing.py)."""

from __future__ import annotations

import pytest
from inprocess.conftest import app, no_blocking  # noqa: F401  (fixtures)


@pytest.fixture
def client(app):  # noqa: F811
    return app[0]
