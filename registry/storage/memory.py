"""In-memory driver: the whole protocol over a dict, for tests of the core services.

Memory only: nothing survives the process, and every process has its own
store (share one `MemoryStore` between drivers to model replicas). Files are
immutable `bytes`; a writer buffers what it is given and stores the result at
close, seal or commit, so reading a file while it is being written shows the
previous version. Every operation completes without awaiting anything, so on
one event loop each is atomic. Directories are implied by the paths of files,
so they disappear with their last file, as on the other drivers. Listings sort
the keys on every call: fine for tests, not for millions of files.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from registry.storage.driver import FileInfo, PathNotFound, StorageError, check_path

NAME = "memory"


@dataclass
class MemoryStore:
    """The files of one or more MemoryDrivers: path -> (content, mtime)."""

    files: dict[str, tuple[bytes, float]] = field(default_factory=dict)


class MemoryWriter:
    """Buffers appends in memory; close, seal and commit store base + buffer."""

    def __init__(self, driver: MemoryDriver, path: str, base: bytes) -> None:
        self._driver = driver
        self._path = path
        self._base = base
        self._buf = bytearray()
        self._done = False

    @property
    def size(self) -> int:
        return len(self._base) + len(self._buf)

    def _check(self, what: str) -> None:
        if self._done:
            raise StorageError(f"{what} of a closed writer", NAME, self._path)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check("write")
        self._buf += data

    async def writev(self, chunks: list[bytes]) -> None:
        self._check("write")
        for chunk in chunks:
            self._buf += chunk

    async def truncate(self, size: int) -> None:
        self._check("truncate")
        if size > self.size:
            raise StorageError("truncate cannot grow a file", NAME, self._path)
        if size >= len(self._base):
            del self._buf[size - len(self._base):]
        else:
            self._base = self._base[:size]
            self._buf.clear()

    async def close(self) -> None:
        if not self._done:
            self._done = True
            self._driver._store(self._path, self._base + bytes(self._buf))
            self._buf = bytearray()

    async def seal(self) -> None:
        self._check("seal")
        await self.close()

    async def commit(self) -> None:
        self._check("commit")
        await self.close()

    async def cancel(self) -> None:
        self._done = True
        self._buf = bytearray()
        self._driver._files.pop(self._path, None)


class MemoryDriver:
    """The driver protocol in memory (see the module docstring)."""

    name = NAME

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store if store is not None else MemoryStore()
        self._files = self.store.files

    # -- helpers -------------------------------------------------------------

    def _get(self, path: str) -> bytes:
        check_path(path, NAME)
        try:
            return self._files[path][0]
        except KeyError:
            raise PathNotFound("path not found", NAME, path) from None

    def _store(self, path: str, data: bytes) -> None:
        """Put a file, refusing what a filesystem cannot hold either: a file
        where a directory is, or below another file."""
        check_path(path, NAME)
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self._files:
                raise StorageError("a file is in the way", NAME, path)
        if path not in self._files and self._below(path):
            raise StorageError("a directory is in the way", NAME, path)
        self._files[path] = (data, time.time())

    def _below(self, path: str) -> list[str]:
        """The paths of the files below a directory path ("" is the root), sorted."""
        prefix = f"{path}/" if path else ""
        return sorted(p for p in self._files if p.startswith(prefix))

    # -- protocol ------------------------------------------------------------

    async def get_content(self, path: str, max_bytes: int | None = None) -> bytes:
        data = self._get(path)
        if max_bytes is not None and len(data) > max_bytes:
            raise StorageError(f"content larger than {max_bytes} bytes", NAME, path)
        return data

    async def put_content(self, path: str, data: bytes, private: bool = False) -> None:
        self._store(path, bytes(data))

    async def reader(self, path: str, offset: int = 0, length: int | None = None,
                     chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        view = memoryview(self._get(path))
        end = len(view) if length is None else min(len(view), offset + length)
        for pos in range(offset, end, chunk_size):
            yield bytes(view[pos:min(pos + chunk_size, end)])

    async def writer(self, path: str, append: bool = False) -> MemoryWriter:
        check_path(path, NAME)
        base = self._files[path][0] if append and path in self._files else b""
        return MemoryWriter(self, path, base)

    async def stat(self, path: str) -> FileInfo:
        check_path(path, NAME)
        if path in self._files:
            data, mtime = self._files[path]
            return FileInfo(path, len(data), mtime, False)
        prefix = path + "/"
        if any(p.startswith(prefix) for p in self._files):
            return FileInfo(path, 0, 0.0, True)
        raise PathNotFound("path not found", NAME, path)

    async def list(self, path: str) -> list[str]:
        if path:
            check_path(path, NAME)
        skip = len(path) + 1 if path else 0
        names = {p[skip:].split("/", 1)[0] for p in self._below(path)}
        if not names:
            raise PathNotFound("path not found", NAME, path)
        return sorted(names)

    async def walk(self, path: str, start_after: str = "") -> AsyncIterator[FileInfo]:
        if path:
            check_path(path, NAME)
        # Paths are ASCII, so str order is byte order; a file deleted since the
        # listing was taken is skipped.
        for p in self._below(path):
            if p > start_after and p in self._files:
                data, mtime = self._files[p]
                yield FileInfo(p, len(data), mtime, False)

    async def compose(self, dst: str, sources: builtins.list[str]) -> int:
        data = b"".join([self._get(src) for src in sources])
        self._store(dst, data)
        return len(data)

    async def move(self, src: str, dst: str) -> None:
        data = self._get(src)
        check_path(dst, NAME)
        if src != dst:
            self._store(dst, data)
            del self._files[src]

    async def delete(self, path: str) -> None:
        check_path(path, NAME)
        gone = self._below(path)
        if path in self._files:
            gone.append(path)
        if not gone:
            raise PathNotFound("path not found", NAME, path)
        for p in gone:
            del self._files[p]

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        return None

    def local_path(self, path: str) -> str | None:
        return None

    async def close(self) -> None:
        return None
