"""CheckedDriver (path checks, error tagging, counters) and the driver registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from registry.config import StorageConfig
from registry.storage import create_driver, register, registered
from registry.storage.base import CheckedDriver
from registry.storage.driver import Driver, FileWriter, InvalidPath, PathNotFound, StorageError
from registry.storage.filesystem import FilesystemDriver
from registry.storage.memory import MemoryDriver


class Spy(MemoryDriver):
    """A memory driver that records the paths it is called with, checking none."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def get_content(self, path: str, max_bytes: int | None = None) -> bytes:
        self.seen.append(path)
        if path == "boom":
            raise StorageError("it broke")
        return await super().get_content(path, max_bytes)


async def test_refuses_bad_paths_before_the_driver_sees_them() -> None:
    spy = Spy()
    drv = CheckedDriver(spy)
    for bad in ("../etc/passwd", "a//b", "", "/x"):
        with pytest.raises(InvalidPath) as info:
            await drv.get_content(bad)
        assert info.value.driver == "memory"
    assert spy.seen == []
    assert drv.stats()["ops"]["get_content"]["errors"] == 4


async def test_tags_errors_with_driver_and_path() -> None:
    drv = CheckedDriver(Spy())
    with pytest.raises(StorageError) as info:
        await drv.get_content("boom")
    assert (info.value.driver, info.value.path) == ("memory", "boom")
    assert str(info.value) == "memory: it broke"
    with pytest.raises(PathNotFound) as missing:
        await drv.stat("a/b")
    assert (missing.value.driver, missing.value.path) == ("memory", "a/b")
    with pytest.raises(PathNotFound) as missing:
        [c async for c in drv.reader("nothing/here")]
    assert missing.value.path == "nothing/here"


async def test_counts_calls_misses_and_bytes() -> None:
    drv = CheckedDriver(MemoryDriver())
    await drv.put_content("c/a", b"12345")
    assert await drv.get_content("c/a") == b"12345"
    assert b"".join([c async for c in drv.reader("c/a", chunk_size=2)]) == b"12345"
    w = await drv.writer("c/w")
    await w.write(b"abc")
    await w.writev([b"de", b"f"])
    await w.commit()
    assert await drv.compose("c/both", ["c/a", "c/w"]) == 11
    with pytest.raises(PathNotFound):
        await drv.stat("c/missing")
    assert [i.path async for i in drv.walk("c")] == ["c/a", "c/both", "c/w"]
    await drv.delete("c")
    ops = drv.stats()["ops"]
    assert drv.stats()["driver"] == "memory"
    assert ops["put_content"] == {"calls": 1, "not_found": 0, "errors": 0, "bytes_read": 0,
                                  "bytes_written": 5}
    assert ops["get_content"]["bytes_read"] == 5 and ops["reader"]["bytes_read"] == 5
    assert ops["writer"]["calls"] == 1 and ops["writer"]["bytes_written"] == 6
    assert ops["compose"]["bytes_written"] == 11
    assert ops["stat"]["not_found"] == 1 and ops["stat"]["errors"] == 0
    assert ops["walk"]["calls"] == 1 and ops["delete"]["calls"] == 1


async def test_is_a_driver_and_passes_clean_tmp_through(tmp_path) -> None:
    inner = FilesystemDriver(tmp_path, fsync=False)
    drv = CheckedDriver(inner)
    assert isinstance(drv, Driver)
    assert drv.local_path == inner.local_path  # the same bound method: no wrapper on sendfile
    assert drv.local_path("a/b") == str(tmp_path.resolve() / "a/b")
    assert drv.clean_tmp() == 0 and drv.inner is inner
    assert CheckedDriver(MemoryDriver()).clean_tmp() == 0  # no scratch files to clean
    w = await drv.writer("w")
    assert isinstance(w, FileWriter)
    await w.cancel()


def test_overhead_is_small() -> None:
    """The wrapper adds only a few calls per driver call (manifest GETs go through
    it): counted, not timed (times drift with the machine's load), on get_content
    of the memory driver. Its cost in time is in docs/benchmarks.md."""
    import asyncio

    raw, wrapped = MemoryDriver(), CheckedDriver(MemoryDriver())
    path = "repositories/a/_manifests/tags/latest/current"

    async def setup() -> None:
        for d in (raw, wrapped):
            await d.put_content(path, b"x" * 71)

    asyncio.run(setup())

    def calls(drv) -> int:
        seen = 0

        def profile(frame, event, arg) -> None:
            nonlocal seen
            seen += event in ("call", "c_call")

        coro = drv.get_content(path)
        sys.setprofile(profile)
        try:
            coro.send(None)
        except StopIteration:
            pass
        finally:
            sys.setprofile(None)
        return seen

    assert calls(wrapped) - calls(raw) <= 6


def test_registry_creates_wrapped_drivers_by_name(tmp_path) -> None:
    assert {"filesystem", "s3", "memory"} <= set(registered())
    drv = create_driver(StorageConfig(driver="memory"))
    assert isinstance(drv, CheckedDriver) and isinstance(drv.inner, MemoryDriver)
    drv = create_driver(StorageConfig(driver="filesystem", root=str(tmp_path)))
    assert isinstance(drv.inner, FilesystemDriver)
    with pytest.raises(ValueError, match="tape"):
        create_driver(StorageConfig(driver="tape"))
    register("test-extra", lambda config: MemoryDriver())
    assert create_driver(StorageConfig(driver="test-extra")).name == "memory"


def test_aiobotocore_only_imported_for_s3(tmp_path) -> None:
    code = ("import sys; from registry.config import StorageConfig; "
            "from registry.storage import create_driver; "
            f"create_driver(StorageConfig(driver='filesystem', root={str(tmp_path)!r})); "
            "create_driver(StorageConfig(driver='memory')); "
            "assert 'aiobotocore' not in sys.modules and 'botocore' not in sys.modules, "
            "'s3 imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_accepts_memory() -> None:
    from registry.config import Config, validate

    config = Config()
    config.storage.driver = "memory"
    assert not [p for p in validate(config) if "driver" in p]
    config.storage.driver = "tape"
    assert any("driver" in p for p in validate(config))
