"""The API suite runs against every storage driver: each test runs once per driver in
DRIVERS, on a registry of that driver running in this process (tests/appthread.py),
as devpi re-runs its whole suite on another backend.

`registry` is one in-process registry per driver for the whole session (pytest groups
the tests by driver, so each starts once); tests keep apart by repository name
(`registry.repo()`). `start_registry(config=...)` starts another one on the same
driver with that TOML config, for tests of a setting. Every test runs under
blockbuster: a blocking call made by registry code on the app's event loop raises
there, and the request answers 500."""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from appthread import AppRegistry, start_app
from blockbuster import BlockBuster, blockbuster_ctx
from harness import RunningRegistry, launch
from seaweed import ACCESS_KEY, SECRET_KEY

from registry.config import Config, load

# REGISTRY_TEST_EXTERNAL=host:port runs the suite once, against a registry started
# elsewhere (a reference registry, by hand), as tests/conftest.py describes.
EXTERNAL = os.environ.get("REGISTRY_TEST_EXTERNAL")
DRIVERS = ("external",) if EXTERNAL else ("memory", "filesystem", "s3")
S3_BUCKET = "api"


def _config(driver: str, tmp: Path, request: pytest.FixtureRequest,
            toml: str = "") -> tuple[Config, Path | None]:
    """The config of a registry on `driver` with its data under `tmp` (and on S3 a fresh
    prefix of the shared SeaweedFS's bucket), plus the TOML text's settings."""
    overrides: dict[str, dict] = {section: dict(values)
                                  for section, values in tomllib.loads(toml).items()}
    storage = overrides.setdefault("storage", {})
    storage["driver"] = driver
    data_dir = None
    index = tmp / "index.sqlite"
    if driver == "filesystem":
        # As `registry serve --data DIR` lays it out, two levels below tmp: the hostile
        # tests look for stray files beside DIR and one level up, which is then only
        # this registry's (not the session's whole temp dir, SeaweedFS's files included).
        data_dir = tmp / "srv" / "data"
        storage["root"] = str(data_dir / "storage")
        index = data_dir / "index.sqlite"
    elif driver == "s3":
        seaweed = request.getfixturevalue("seaweed")
        storage.update(bucket=S3_BUCKET, prefix=f"t-{uuid.uuid4().hex[:12]}",
                       endpoint_url=seaweed.endpoint, access_key=ACCESS_KEY,
                       secret_key=SECRET_KEY)
    overrides.setdefault("index", {})["path"] = str(index)
    return load(env={}, overrides=overrides), data_dir


@pytest.fixture(scope="session", params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def registry(driver: str, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[AppRegistry | RunningRegistry]:
    if EXTERNAL:
        yield RunningRegistry(host=EXTERNAL)
        return
    tmp = tmp_path_factory.mktemp(f"api-{driver}")
    config, data_dir = _config(driver, tmp, request)
    reg = start_app(config, driver, data_dir)
    yield reg
    reg.stop()


@pytest.fixture
def start_registry(driver: str, request: pytest.FixtureRequest, no_blocking: BlockBuster,
                   tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Callable[..., AppRegistry]]:
    """start_registry(config="TOML") -> another in-process registry on this driver."""
    started: list[AppRegistry | RunningRegistry] = []

    def start(config: str = "") -> AppRegistry | RunningRegistry:
        tmp = tmp_path_factory.mktemp(f"api-{driver}")
        if EXTERNAL:  # a setting of ours: our server, as a process
            process = launch(tmp, config=config)
            started.append(process)
            return process
        cfg, data_dir = _config(driver, tmp, request, config)
        no_blocking.deactivate()  # starting may block once, serving may not
        try:
            reg = start_app(cfg, driver, data_dir)
        finally:
            no_blocking.activate()
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()


@pytest.fixture(autouse=True)
def no_blocking(registry: AppRegistry | RunningRegistry) -> Iterator[BlockBuster]:
    """Blockbuster for the test (after the session's registry started: starting may
    block once, serving may not)."""
    with blockbuster_ctx(["registry"]) as bb:
        yield bb
