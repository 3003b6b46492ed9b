"""Every in-process test runs under blockbuster: any blocking file, socket or sleep
call made by registry code on the event loop thread raises, as in aiohttp's own
suite. `app` runs the whole application in this process on aiohttp's test server."""

from __future__ import annotations

import pytest
from blockbuster import blockbuster_ctx

from registry.app import running
from registry.config import load


@pytest.fixture(autouse=True)
def no_blocking(request):
    if "app" in request.fixturenames:  # it starts blockbuster once the app is up
        yield
        return
    with blockbuster_ctx(["registry"]):
        yield


@pytest.fixture
async def app(aiohttp_client, aiohttp_raw_server, tmp_path):
    """(client, dispatcher) for a registry on the filesystem under tmp_path."""
    config = load(env={}, overrides={"storage": {"root": str(tmp_path / "storage")},
                                     "index": {"path": str(tmp_path / "index.sqlite")}})
    async with running(config) as dispatcher:
        client = await aiohttp_client(await aiohttp_raw_server(dispatcher.handle))
        # Start-up (creating directories, opening the index) may block once; serving may not.
        with blockbuster_ctx(["registry"]):
            yield client, dispatcher
