"""Registries on the S3 driver over a real SeaweedFS (see tests/seaweed.py).

`seaweed` is the session's shared store; `s3_env()` gives the environment for
one more registry process on a fresh prefix of the shared bucket, so tests
never see each other's data. Tests that kill the store start their own.
Here `registry` (the shared server every client test uses) runs on the S3
driver, so the client suites of tests/clients can run against it unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from harness import RunningRegistry, launch
from seaweed import Seaweed

BUCKET = "replicas"


@pytest.fixture
def s3_env(seaweed: Seaweed) -> Callable[..., dict[str, str]]:
    """s3_env(**extra) -> env for a registry on this test's prefix (same for every call)."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"

    def env(**extra: str) -> dict[str, str]:
        out = seaweed.registry_env(BUCKET, prefix)
        out.update({f"REGISTRY_{k.upper()}": v for k, v in extra.items()})
        return out

    env.prefix = prefix  # type: ignore[attr-defined]
    return env


@pytest.fixture(scope="session")
def registry(seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningRegistry]:
    """The shared test registry, on the S3 driver (its own prefix of the bucket)."""
    reg = launch(tmp_path_factory.mktemp("s3-registry"), data=False,
                 env=seaweed.registry_env(BUCKET, f"shared-{uuid.uuid4().hex[:12]}"))
    yield reg
    reg.stop()


@pytest.fixture
def own_seaweed(tmp_path) -> Iterator[Seaweed]:
    """A SeaweedFS of the test's own, for tests that kill and restart the store."""
    server = Seaweed(tmp_path / "seaweed")
    server.start()
    yield server
    server.stop()
