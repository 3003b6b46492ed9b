"""Filesystem driver: the embedded default.

Blocking file calls run in worker threads, never on the event loop. Content is
written to a temporary file under `_tmp/` (same filesystem) and renamed into
place, so a crash or a full disk never leaves a partial object visible.

Directories exist only while they hold something, as on an object store:
`delete` and `move` remove the directories they leave empty (up to the root,
never `_tmp/`), so an emptied repository disappears from listings. A write
creates its parent directories and renames or opens into them; if a
concurrent prune removes a directory in between, the write sees
FileNotFoundError and simply creates the directories again (`_into`).
"""

from __future__ import annotations

import asyncio
import builtins
import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from registry.storage.driver import (
    FileInfo,
    PathNotFound,
    StorageError,
    StorageUnavailable,
    check_path,
)
from registry.storage.paths import KEEP_PREFIX, TMP
from registry.storage.walk import Entry, sort_entries, walk_tree

to_thread = asyncio.to_thread
T = TypeVar("T")
# With [storage] fsync on, writeback of upload data is started every this many bytes.
SYNC_EVERY = 64 << 20
# Times a write re-creates its parent directories when a concurrent prune removed them.
PLACE_ATTEMPTS = 8


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        raw = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    raw.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    raw.restype = ctypes.c_int
    fn: Callable[[int, int, int, int], int] = raw
    return fn


_sync_file_range = _load_sync_file_range()
SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk without waiting (Linux
    sync_file_range, which Python's os module lacks); elsewhere, fdatasync."""
    if _sync_file_range is None or _sync_file_range(fd, offset, length,
                                                     SYNC_FILE_RANGE_WRITE) != 0:
        os.fdatasync(fd)


def _copy(src: BinaryIO, dst: BinaryIO) -> None:
    """Append all of file src to file dst, in the kernel where it can (no copy
    through user space, and reflinks on filesystems that share extents)."""
    dst.flush()
    try:
        while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
            pass
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        shutil.copyfileobj(src, dst, 1 << 20)
    # copy_file_range moved the fd offsets, not the Python file objects' view of them.
    dst.seek(0, os.SEEK_END)


class FilesystemWriter:
    """Appends to a file in place: the bytes are visible at the path as they are
    written, so content that must appear whole is written elsewhere and moved."""

    def __init__(self, driver: FilesystemDriver, path: str, fh: BinaryIO, size: int) -> None:
        self._driver = driver
        self._path = path
        self._fh = fh
        self._size = size
        self._unsynced = 0

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        await self.writev([data])

    async def writev(self, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        """Write several buffers with one thread hop and no joining copy."""
        await to_thread(self._driver._guard, self._writev, chunks)

    def _writev(self, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        self._fh.writelines(chunks)
        n = sum(len(c) for c in chunks)
        self._size += n
        self._unsynced += n
        if self._unsynced >= SYNC_EVERY:
            # Start writeback as we go, so the fsync at commit has little left to
            # wait for; sync_file_range does not wait, so the upload is not stalled.
            self._start_writeback()

    def _start_writeback(self) -> None:
        """Start writing what this writer wrote since the last call (with fsync on)."""
        if self._driver.fsync and self._unsynced:
            self._fh.flush()
            start_writeback(self._fh.fileno(), self._size - self._unsynced, self._unsynced)
            self._unsynced = 0

    async def truncate(self, size: int) -> None:
        def _trunc() -> None:
            self._fh.flush()
            self._fh.truncate(size)
            self._fh.seek(size)

        await to_thread(self._driver._guard, _trunc)
        self._size = size

    async def close(self) -> None:
        if not self._fh.closed:
            await to_thread(self._driver._guard, self._close)

    def _close(self) -> None:
        try:
            # A chunked upload opens a writer per PATCH, each below SYNC_EVERY: start
            # the writeback of what this one wrote, or the fsync when the upload is
            # finished would have the whole blob left to write.
            self._start_writeback()
        finally:
            self._fh.close()

    async def seal(self) -> None:
        def _seal() -> None:
            self._fh.flush()
            if self._driver.fsync:
                os.fsync(self._fh.fileno())
            self._fh.close()

        await to_thread(self._driver._guard, _seal)

    async def commit(self) -> None:
        # The file is written in place: durable is published.
        await self.seal()

    async def cancel(self) -> None:
        await self.close()
        try:
            await self._driver.delete(self._path)
        except PathNotFound:
            pass


class FilesystemDriver:
    name = "filesystem"

    def __init__(self, root: str | os.PathLike[str], fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / TMP).mkdir(exist_ok=True)

    # -- helpers -------------------------------------------------------------

    def _full(self, path: str) -> Path:
        return self.root / check_path(path, self.name)

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call, translating OS errors into storage errors."""
        try:
            return fn(*args)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise PathNotFound("path not found", self.name, self._rel(exc.filename)) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageUnavailable("no space left on device", self.name) from exc
            raise StorageError(f"{exc.strerror or exc}", self.name) from exc

    def _rel(self, filename: object) -> str:
        """A driver path for an OS error's file name: never the local root."""
        name = str(filename or "")
        root = str(self.root) + os.sep
        return name[len(root):] if name.startswith(root) else ""

    def _tmp_path(self) -> Path:
        return self.root / TMP / uuid.uuid4().hex

    def _into(self, target: Path, place: Callable[[], T], source: Path | None = None) -> T:
        """Create target's parent directories and run `place()` (a rename or an
        open into them). A concurrent delete may prune the fresh directories
        before `place` runs: then create them again, a few times. If `source`
        is given and has vanished, the failure is real: the directories made
        for it are pruned again and the error raised."""
        for attempt in range(PLACE_ATTEMPTS):
            try:
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                except FileExistsError:
                    # mkdir found the directory, then it was pruned before Path.mkdir
                    # checked it is one; a file in the way fails again every time.
                    if attempt + 1 == PLACE_ATTEMPTS:
                        raise
                    continue
                return place()
            except FileNotFoundError:
                if source is not None and not os.path.lexists(source):
                    self._prune(target.parent)
                    raise
                if attempt + 1 == PLACE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _prune(self, directory: Path) -> None:
        """Remove `directory` and then each ancestor while they are empty; never
        the root or `_tmp`. rmdir refuses a directory that is not empty, so a
        concurrent write that got there first keeps it (and one that comes after
        re-creates it, see `_into`)."""
        tmp = self.root / TMP
        while directory != self.root and directory != tmp and self.root in directory.parents:
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass  # pruned concurrently: its parent may still be empty
            except OSError:
                return  # not empty (or not ours to remove): stop here
            directory = directory.parent

    # -- protocol ------------------------------------------------------------

    async def get_content(self, path: str, max_bytes: int | None = None) -> bytes:
        full = self._full(path)

        def _read() -> bytes:
            with open(full, "rb") as fh:
                if max_bytes is None:
                    return fh.read()
                data = fh.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise StorageError(f"content larger than {max_bytes} bytes", self.name, path)
                return data

        return await to_thread(self._guard, _read)

    async def put_content(self, path: str, data: bytes, private: bool = False) -> None:
        full = self._full(path)
        # A private file is created owner-only, before any byte is in it, and keeps
        # its mode through the rename: it is never readable by others, not briefly.
        mode = 0o600 if private else 0o666

        def _put() -> None:
            tmp = self._tmp_path()
            try:
                with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as fh:
                    fh.write(data)
                    if self.fsync:
                        fh.flush()
                        os.fsync(fh.fileno())
                self._into(full, lambda: os.replace(tmp, full))
            finally:
                tmp.unlink(missing_ok=True)

        await to_thread(self._guard, _put)

    async def reader(self, path: str, offset: int = 0, length: int | None = None,
                     chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        full = self._full(path)
        fh = await to_thread(self._guard, lambda: open(full, "rb"))
        try:
            if offset:
                await to_thread(fh.seek, offset)
            remaining = length
            while remaining is None or remaining > 0:
                n = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = await to_thread(self._guard, fh.read, n)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await to_thread(fh.close)

    async def writer(self, path: str, append: bool = False) -> FilesystemWriter:
        full = self._full(path)

        def _open() -> tuple[BinaryIO, int]:
            fh = self._into(full, lambda: open(full, "ab" if append else "wb"))
            return fh, fh.tell()

        fh, size = await to_thread(self._guard, _open)
        return FilesystemWriter(self, path, fh, size)

    async def stat(self, path: str) -> FileInfo:
        full = self._full(path)
        st = await to_thread(self._guard, os.stat, full)
        return FileInfo(path, st.st_size, st.st_mtime, stat.S_ISDIR(st.st_mode))

    async def list(self, path: str) -> list[str]:
        full = self.root if path == "" else self._full(path)

        def _list() -> list[str]:
            names = sorted(os.listdir(full)) if full.is_dir() else []
            if path == "" and TMP in names:
                names.remove(TMP)  # scratch space is not part of the store
            # A directory holding nothing (being filled or pruned right now, or
            # left by an older version) does not exist, as on the other drivers.
            if not names:
                raise FileNotFoundError(errno.ENOENT, "not a directory", str(full))
            return names

        return await to_thread(self._guard, _list)

    def walk(self, path: str, start_after: str = "") -> AsyncIterator[FileInfo]:
        if path:
            self._full(path)
        return walk_tree(path, start_after, self._scan_dir)

    async def _scan_dir(self, path: str) -> builtins.list[Entry]:
        return await to_thread(self._scan, self.root / path if path else self.root, not path)

    def _scan(self, directory: Path, is_root: bool) -> builtins.list[Entry]:
        """One directory's entries as (name, is_dir, size, mtime), in walk order;
        empty if it is missing (or pruned meanwhile, or a file)."""
        out = []
        try:
            with os.scandir(directory) as it:
                for e in it:
                    if is_root and e.name == TMP:
                        continue
                    try:
                        if e.is_dir(follow_symlinks=False):
                            out.append((e.name, True, 0, 0.0))
                        else:
                            st = e.stat(follow_symlinks=False)
                            out.append((e.name, False, st.st_size, st.st_mtime))
                    except FileNotFoundError:
                        continue  # deleted while we looked
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StorageError(f"{exc.strerror or exc}", self.name) from exc
        return sort_entries(out)

    async def compose(self, dst: str, sources: builtins.list[str]) -> int:
        d = self._full(dst)
        srcs = [self._full(src) for src in sources]

        def _compose() -> int:
            tmp = self._tmp_path()
            try:
                with open(tmp, "wb") as out:
                    for src in srcs:
                        with open(src, "rb") as fh:
                            _copy(fh, out)
                    size = out.tell()
                    if self.fsync:
                        os.fsync(out.fileno())
                self._into(d, lambda: os.replace(tmp, d))
                return size
            finally:
                tmp.unlink(missing_ok=True)

        return await to_thread(self._guard, _compose)

    async def move(self, src: str, dst: str) -> None:
        s, d = self._full(src), self._full(dst)

        def _move() -> None:
            os.lstat(s)  # a missing source fails before any directory is made for it
            self._into(d, lambda: os.replace(s, d), source=s)
            self._prune(s.parent)

        await to_thread(self._guard, _move)

    async def delete(self, path: str) -> None:
        full = self._full(path)

        def _delete() -> None:
            if full.is_dir() and not full.is_symlink():
                # Rename first so a concurrent reader never sees a half-deleted tree.
                tmp = self._tmp_path()
                os.replace(full, tmp)
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                full.unlink()
            # Emptied parents go too, so listings agree with the object stores (an
            # empty repository directory would still count as a repository).
            self._prune(full.parent)

        await to_thread(self._guard, _delete)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        return None

    def local_path(self, path: str) -> str | None:
        return str(self._full(path))

    async def close(self) -> None:
        return None

    def clean_tmp(self, older_than: float = 3600.0) -> int:
        """Remove scratch files left by a crash; returns how many went."""
        import time

        cutoff = time.time() - older_than
        removed = 0
        for entry in os.scandir(self.root / TMP):
            if entry.name.startswith(KEEP_PREFIX):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
