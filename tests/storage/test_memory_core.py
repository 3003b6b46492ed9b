"""The core services run over the memory driver, without a server or a disk: what
the memory driver is for. One upload life cycle end to end, as a smoke test."""

from __future__ import annotations

import hashlib

from registry.core.factory import build_registry
from registry.core.grammar import Digest
from registry.storage import paths
from registry.storage.base import CheckedDriver
from registry.storage.memory import MemoryDriver


async def chunks_of(*parts: bytes):
    for part in parts:
        yield part


async def test_upload_finish_and_cancel_in_memory() -> None:
    driver = CheckedDriver(MemoryDriver())
    reg = build_registry(driver)
    data = b"hello " * 1000
    digest = Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())

    status = await reg.uploads.start("lib/app")
    await reg.uploads.append("lib/app", status.id, chunks_of(data[:100]))
    size = await reg.uploads.finish("lib/app", status.id, digest, chunks_of(data[100:]))
    assert size == len(data)
    assert await driver.get_content(paths.blob(digest)) == data
    assert await reg.blobs.size(digest) == len(data)
    assert await reg.catalog.repositories() == ["lib/app"]

    other = await reg.uploads.start("lib/other")
    assert await reg.catalog.exists("lib/other")
    await reg.uploads.cancel("lib/other", other.id)
    assert not await reg.catalog.exists("lib/other")
    assert await reg.catalog.repositories() == ["lib/app"]
    assert driver.stats()["ops"]["move"]["calls"] == 1
