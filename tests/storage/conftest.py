"""The shared driver suite runs every test against every driver.

`driver` is a fresh driver per test: the filesystem driver on a temp dir, the
S3 driver on a real SeaweedFS (one per session, see tests/seaweed.py) under a
fresh key prefix, and the memory driver; each wrapped in CheckedDriver as
create_driver wraps them. After each test the fixture fails the test if it
left anything behind: files (besides the filesystem driver's empty `_tmp/`),
directories, objects under the prefix, or unfinished multipart uploads.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.storage.base import CheckedDriver
from registry.storage.driver import Driver
from registry.storage.filesystem import FilesystemDriver
from registry.storage.memory import MemoryDriver, MemoryStore
from registry.storage.s3 import S3Driver

BUCKET = "driver-suite"
S3_PART_SIZE = 5 << 20


def s3_driver(server, prefix: str, **kw) -> S3Driver:
    from seaweed import ACCESS_KEY, SECRET_KEY

    return S3Driver(BUCKET, prefix=prefix, endpoint_url=server.endpoint,
                    access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                    part_size=kw.pop("part_size", S3_PART_SIZE), janitor=False, **kw)


def _fs_leftovers(root: Path) -> list[str]:
    """Files left under root, and directories (besides the root and `_tmp/`):
    the driver removes the directories a delete or move leaves empty."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out += [os.path.normpath(os.path.join(rel, f)) for f in filenames]
        out += [os.path.normpath(os.path.join(rel, d)) + "/" for d in dirnames
                if not (rel == "." and d == "_tmp")]
    return sorted(out)


class DriverMaker:
    """Makes more drivers on the same store (a second replica, say)."""

    def __init__(self, kind: str, tmp: Path, server) -> None:
        self.kind = kind
        self.tmp = tmp
        self.server = server
        self.prefix = f"t-{uuid.uuid4().hex[:12]}"
        self.store = MemoryStore()
        self.made: list[Driver] = []

    def __call__(self, **kw) -> CheckedDriver:
        if self.kind == "filesystem":
            inner: Driver = FilesystemDriver(self.tmp / "root", fsync=False)
        elif self.kind == "memory":
            inner = MemoryDriver(self.store)
        else:
            inner = s3_driver(self.server, self.prefix, **kw)
        drv = CheckedDriver(inner)
        self.made.append(drv)
        return drv

    def leftovers(self) -> list[str]:
        if self.kind == "filesystem":
            return _fs_leftovers(self.tmp / "root")
        if self.kind == "memory":
            return sorted(self.store.files)
        return (self.server.tree(BUCKET, self.prefix + "/")
                + [f"multipart:{k}" for k in self.server.multipart_uploads(
                    BUCKET, self.prefix + "/")])


@pytest.fixture(params=["filesystem", "memory", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def make_driver(kind: str, tmp_path: Path, request: pytest.FixtureRequest
                      ) -> AsyncIterator[DriverMaker]:
    server = request.getfixturevalue("seaweed") if kind == "s3" else None
    maker = DriverMaker(kind, tmp_path, server)
    yield maker
    for drv in maker.made:
        await drv.close()
    left = maker.leftovers()
    assert not left, f"test left files behind in the {kind} driver: {left[:20]}"


@pytest.fixture
async def driver(make_driver: DriverMaker) -> Driver:
    return make_driver()
