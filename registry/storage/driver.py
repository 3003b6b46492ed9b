"""The storage driver protocol, modelled on CNCF distribution's storagedriver.go.

A driver stores opaque byte strings at slash-separated relative paths. It knows
nothing of OCI; `registry.storage.paths` decides where things live. Every
driver must make writes atomic: a reader sees either nothing or the whole
content at a path, never a prefix of it. Directories exist only while they
hold a file, on every driver: deleting the last file below one removes it.

Drivers are made by `registry.storage.create_driver`, which wraps them in
`registry.storage.base.CheckedDriver`: it refuses bad paths before a driver
sees them, tags errors with the driver and path, and counts operations.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """A driver failure that is not simply a missing path."""

    def __init__(self, message: str, driver: str = "", path: str = "") -> None:
        self.message = message
        self.driver = driver
        self.path = path
        super().__init__(f"{driver}: {message}" if driver else message)

    def tag(self, driver: str, path: str) -> None:
        """Fill in the driver and path where whoever raised this did not know them."""
        if not self.path:
            self.path = path
        if not self.driver:
            self.driver = driver
            self.args = (f"{driver}: {self.message}",)


class PathNotFound(StorageError):
    """Nothing is stored at the path."""


class StorageUnavailable(StorageError):
    """The backend did not answer (down, overloaded, timing out): worth a retry later."""


class InvalidPath(StorageError):
    """A path that does not satisfy the driver path grammar (a bug, or an attack)."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What `stat` and `walk` tell about a path (`walk` only yields files)."""

    path: str
    size: int
    mtime: float
    is_dir: bool


@runtime_checkable
class FileWriter(Protocol):
    """An append-only writer, resumable with `writer(path, append=True)`.

    The bytes are readable at the path once the writer is closed, sealed or
    committed (the filesystem driver shows them as they are written): to
    publish content atomically, write it at a private path, `seal`, then
    `move` it into place. End every writer with exactly one of close, seal,
    commit or cancel."""

    @property
    def size(self) -> int:
        """Bytes written so far, including those from before an append reopen."""
        ...

    async def write(self, data: bytes | bytearray | memoryview) -> None: ...

    async def close(self) -> None:
        """Flush and release; the content stays resumable with writer(append=True)."""
        ...

    async def seal(self) -> None:
        """Flush and make the written bytes durable without publishing them as
        one object; the next step is `Driver.move` (the s3 driver then composes
        its segments straight into the destination, copying the bytes once)."""
        ...

    async def commit(self) -> None:
        """Flush and publish the content durably at the path, as one object."""
        ...

    async def cancel(self) -> None:
        """Drop everything written at the path."""
        ...


@runtime_checkable
class Driver(Protocol):
    """Byte strings at slash-separated paths (see the module docstring)."""

    name: str

    async def get_content(self, path: str, max_bytes: int | None = None) -> bytes:
        """Whole content of a small object; StorageError if larger than max_bytes."""
        ...

    async def put_content(self, path: str, data: bytes, private: bool = False) -> None:
        """Atomically replace the content at path. `private`: readable by the store's
        owner only where the driver has file permissions (0600 on the filesystem;
        a private key); elsewhere the store's own access control is all there is."""
        ...

    def reader(self, path: str, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream `length` bytes (default: to the end) from offset, in bounded chunks."""
        ...

    async def writer(self, path: str, append: bool = False) -> FileWriter: ...

    async def stat(self, path: str) -> FileInfo: ...

    async def list(self, path: str) -> list[str]:
        """Names of the direct children of a directory-like path, sorted;
        PathNotFound if it holds nothing."""
        ...

    def walk(self, path: str, start_after: str = "") -> AsyncIterator[FileInfo]:
        """Every file below `path` (recursively; "" is the whole store, without
        the drivers' scratch space), in ascending byte order of the full path,
        which is S3's ListObjectsV2 order: a caller resumes by passing the last
        path it saw as `start_after`, and every driver yields the same sequence.
        Paged internally; nothing for a missing path. A file being written
        through a writer appears once, as `stat` shows it (on s3: the size of
        its contiguous segments; the segments themselves never appear)."""
        ...

    async def compose(self, dst: str, sources: builtins.list[str]) -> int:
        """Atomically replace dst with the concatenation of the whole files at
        `sources` (server-side where the store can), returning its size;
        PathNotFound if a source is missing. dst may be one of the sources."""
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


# Long enough for S3 object keys encoded by paths.encode_key (up to 3 bytes per
# key byte), short enough that root + path stays under Linux's PATH_MAX (4096).
MAX_PATH = 3584
# Filesystems refuse longer names (NAME_MAX on Linux).
MAX_COMPONENT = 255
# One match for the whole path (it runs on every driver call): components of
# [A-Za-z0-9._-], none of them "." or "..", no empty ones.
_COMPONENT = rf"(?!\.\.?(?:/|\Z))[A-Za-z0-9._-]{{1,{MAX_COMPONENT}}}"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")


def check_path(path: str, driver: str = "") -> str:
    """Refuse anything but a relative path of safe, non-dot components."""
    if len(path) > MAX_PATH or _PATH.fullmatch(path) is None:
        raise InvalidPath(f"invalid path {path!r}", driver, path)
    return path
