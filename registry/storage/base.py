"""The wrapper every driver made by `create_driver` runs in.

`CheckedDriver` does, once for all drivers, what each should not have to:

* refuses a path outside the driver path grammar (`check_path`) before the
  driver sees it, so a driver can rely on the grammar;
* tags every StorageError raised below it with the driver name and the path;
* counts calls, misses, errors and bytes per operation (`stats()`), for the
  metrics endpoint to export later. Plain integer attributes on one object per
  operation, bumped in place: about 1 us per call on top of the driver, most
  of it check_path (measured on get_content of the memory driver).

Readers and writers it hands out count their bytes too. `local_path` is the
driver's own bound method (sendfile calls it on every blob GET); `clean_tmp` asks
the wrapped driver, if it keeps scratch files, to remove a crash's leftovers. No
other attribute passes through: `inner` is the wrapped driver.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from typing import Any

from registry.storage.driver import (
    Driver,
    FileInfo,
    FileWriter,
    PathNotFound,
    StorageError,
    check_path,
)

OPS = ("get_content", "put_content", "reader", "writer", "stat", "list", "walk", "compose",
       "move", "delete", "redirect_url")


class OpStats:
    """Counters of one operation of one driver."""

    __slots__ = ("bytes_read", "bytes_written", "calls", "errors", "not_found")

    def __init__(self) -> None:
        self.calls = self.not_found = self.errors = self.bytes_read = self.bytes_written = 0

    def failed(self, exc: StorageError, driver: str, path: str) -> None:
        if isinstance(exc, PathNotFound):
            self.not_found += 1
        else:
            self.errors += 1
        exc.tag(driver, path)

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


class CheckedWriter:
    """A driver's FileWriter, counting the bytes written and tagging errors."""

    __slots__ = ("_driver", "_path", "_st", "_w")

    def __init__(self, writer: FileWriter, stats: OpStats, driver: str, path: str) -> None:
        self._w = writer
        self._st = stats
        self._driver = driver
        self._path = path

    @property
    def size(self) -> int:
        return self._w.size

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._w.write(data)
        except StorageError as exc:
            self._st.failed(exc, self._driver, self._path)
            raise
        self._st.bytes_written += len(data)

    async def writev(self, chunks: list[bytes]) -> None:
        """Several buffers at once (one thread hop on the filesystem driver)."""
        writev = getattr(self._w, "writev", None)
        try:
            if writev is not None:
                await writev(chunks)
            else:
                for chunk in chunks:
                    await self._w.write(chunk)
        except StorageError as exc:
            self._st.failed(exc, self._driver, self._path)
            raise
        self._st.bytes_written += sum(len(c) for c in chunks)

    async def _call(self, method: str, *args: Any) -> None:
        try:
            await getattr(self._w, method)(*args)
        except StorageError as exc:
            self._st.failed(exc, self._driver, self._path)
            raise

    async def truncate(self, size: int) -> None:
        """Cut the file back to `size` bytes (a failed chunk is rolled back)."""
        await self._call("truncate", size)

    async def close(self) -> None:
        await self._call("close")

    async def seal(self) -> None:
        await self._call("seal")

    async def commit(self) -> None:
        await self._call("commit")

    async def cancel(self) -> None:
        await self._call("cancel")


class CheckedDriver:
    """Any Driver, with path checks, error tagging and counters (see the module
    docstring). `inner` is the wrapped driver."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name = inner.name
        # Passed through untouched: the blob GET hot path (sendfile) calls it.
        self.local_path = inner.local_path
        self._ops = {op: OpStats() for op in OPS}
        (self._get, self._put, self._read, self._write, self._stat, self._list, self._walk,
         self._compose, self._move, self._delete, self._redirect) = self._ops.values()

    def clean_tmp(self, older_than: float = 3600.0) -> int:
        """Remove the scratch files a crash left behind, on a driver that keeps
        them on local disk (the filesystem driver); 0 on the others."""
        clean = getattr(self.inner, "clean_tmp", None)
        return int(clean(older_than)) if clean is not None else 0

    def stats(self) -> dict[str, Any]:
        """Counters per operation: calls, not_found, errors, bytes_read, bytes_written."""
        return {"driver": self.name, "ops": {op: s.as_dict() for op, s in self._ops.items()}}

    async def get_content(self, path: str, max_bytes: int | None = None) -> bytes:
        st = self._get
        st.calls += 1
        try:
            data = await self.inner.get_content(check_path(path, self.name), max_bytes)
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise
        st.bytes_read += len(data)
        return data

    async def put_content(self, path: str, data: bytes, private: bool = False) -> None:
        st = self._put
        st.calls += 1
        try:
            await self.inner.put_content(check_path(path, self.name), data, private)
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise
        st.bytes_written += len(data)

    async def reader(self, path: str, offset: int = 0, length: int | None = None,
                     chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        st = self._read
        st.calls += 1
        try:
            stream = self.inner.reader(check_path(path, self.name), offset, length, chunk_size)
            try:
                async for chunk in stream:
                    st.bytes_read += len(chunk)
                    yield chunk
            finally:
                # Close the driver's stream now (its file or connection), not at GC.
                await stream.aclose()  # type: ignore[attr-defined]
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        st = self._write
        st.calls += 1
        try:
            w = await self.inner.writer(check_path(path, self.name), append)
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise
        return CheckedWriter(w, st, self.name, path)

    async def stat(self, path: str) -> FileInfo:
        st = self._stat
        st.calls += 1
        try:
            return await self.inner.stat(check_path(path, self.name))
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise

    async def list(self, path: str) -> list[str]:
        st = self._list
        st.calls += 1
        try:
            return await self.inner.list(path and check_path(path, self.name))
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise

    async def walk(self, path: str, start_after: str = "") -> AsyncIterator[FileInfo]:
        st = self._walk
        st.calls += 1
        try:
            stream = self.inner.walk(path and check_path(path, self.name), start_after)
            try:
                async for info in stream:
                    yield info
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise

    async def compose(self, dst: str, sources: builtins.list[str]) -> int:
        st = self._compose
        st.calls += 1
        try:
            for src in sources:
                check_path(src, self.name)
            size = await self.inner.compose(check_path(dst, self.name), sources)
        except StorageError as exc:
            st.failed(exc, self.name, dst)
            raise
        st.bytes_written += size
        return size

    async def move(self, src: str, dst: str) -> None:
        st = self._move
        st.calls += 1
        try:
            await self.inner.move(check_path(src, self.name), check_path(dst, self.name))
        except StorageError as exc:
            st.failed(exc, self.name, src)
            raise

    async def delete(self, path: str) -> None:
        st = self._delete
        st.calls += 1
        try:
            await self.inner.delete(check_path(path, self.name))
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        st = self._redirect
        st.calls += 1
        try:
            return await self.inner.redirect_url(check_path(path, self.name), method)
        except StorageError as exc:
            st.failed(exc, self.name, path)
            raise

    async def close(self) -> None:
        await self.inner.close()
