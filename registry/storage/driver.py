"""The storage driver protocol, modelled on CNCF distribution's storagedriver.go.

A driver stores opaque byte strings at slash-separated relative paths. It knows
nothing of OCI; `registry.storage.paths` decides where things live. Every
driver must make writes atomic: a reader sees either nothing or the whole
content at a path, never a prefix of it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """A driver failure that is not simply a missing path."""

    def __init__(self, message: str, driver: str = "", path: str = "") -> None:
        self.driver = driver
        self.path = path
        super().__init__(f"{driver}: {message}" if driver else message)


class PathNotFound(StorageError):
    """Nothing is stored at the path."""


class StorageUnavailable(StorageError):
    """The backend did not answer (down, overloaded, timing out): worth a retry later."""


class InvalidPath(StorageError):
    """A path that does not satisfy the driver path grammar (a bug, or an attack)."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool


@runtime_checkable
class FileWriter(Protocol):
    """An append-only writer. Nothing is visible at its path before `commit`,
    except for upload data, which is only ever reached through its own path."""

    @property
    def size(self) -> int:
        """Bytes written so far, including those from before an append reopen."""
        ...

    async def write(self, data: bytes | bytearray | memoryview) -> None: ...

    async def close(self) -> None:
        """Flush and release; the content stays resumable with writer(append=True)."""
        ...

    async def commit(self) -> None:
        """Flush and make the content durable at the path."""
        ...

    async def cancel(self) -> None:
        """Drop everything written at the path."""
        ...


@runtime_checkable
class Driver(Protocol):
    name: str

    async def get_content(self, path: str, max_bytes: int | None = None) -> bytes:
        """Whole content of a small object; StorageError if larger than max_bytes."""
        ...

    async def put_content(self, path: str, data: bytes) -> None:
        """Atomically replace the content at path."""
        ...

    def reader(self, path: str, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream `length` bytes (default: to the end) from offset, in bounded chunks."""
        ...

    async def writer(self, path: str, append: bool = False) -> FileWriter: ...

    async def stat(self, path: str) -> FileInfo: ...

    async def list(self, path: str) -> list[str]:
        """Names of the direct children of a directory-like path."""
        ...

    async def move(self, src: str, dst: str) -> None:
        """Atomically move content from src to dst, replacing dst."""
        ...

    async def delete(self, path: str) -> None:
        """Delete path and everything below it; PathNotFound if nothing is there."""
        ...

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A URL the client can fetch the content from directly, or None."""
        ...

    def local_path(self, path: str) -> str | None:
        """A local filesystem path for sendfile, or None when the bytes live elsewhere."""
        ...

    async def close(self) -> None: ...


_COMPONENT = re.compile(r"[A-Za-z0-9._-]+")


def check_path(path: str, driver: str = "") -> str:
    """Refuse anything but a relative path of safe, non-dot components."""
    if not path or len(path) > 1024 or path.startswith("/") or path.endswith("/"):
        raise InvalidPath(f"invalid path {path!r}", driver, path)
    for part in path.split("/"):
        if part in (".", "..") or not _COMPONENT.fullmatch(part):
            raise InvalidPath(f"invalid path {path!r}", driver, path)
    return path
