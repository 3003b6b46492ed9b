"""Whether the store answers: the storage half of `/readyz`."""

from __future__ import annotations

import os

from registry.storage import paths
from registry.storage.driver import Driver, StorageError


async def storage_problem(driver: Driver) -> str | None:
    """None when a small file can be written to the store and read back, else why
    not (a read-only, full or unreachable store). The file is overwritten each time,
    one per process, and kept by the cleaning of scratch space."""
    probe = paths.scratch(f"{paths.KEEP_PREFIX}readyz-{os.getpid()}")
    try:
        await driver.put_content(probe, b"ok")
        if await driver.get_content(probe) != b"ok":
            return "storage: a file written did not read back the same"
    except (StorageError, OSError) as exc:
        return f"storage: {exc}"[:300]
    return None
