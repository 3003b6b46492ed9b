"""One upstream fetch per blob per node, across the worker processes of a cache.

Within a process, `CachingBlobs` coalesces requests with a table of fetches in
flight. Across the `[server] workers` of one cache directory, the fetch of a
digest is claimed with an exclusive `flock` on a lock file in the scratch
space: the worker that gets it downloads to a file named by the digest, and
publishes the blob's size beside it once the upstream has answered. A worker
that does not get it follows that file as it grows, from its own descriptor:
the bytes below the file's size are written (the writer appends in order), and
the file only reaches the blob's full size once the fetcher has verified the
digest (it holds back the last block until then), so a follower that sees the
full size has a verified blob.

The kernel releases a flock when its holder dies, so a follower that can take
the lock while the file is short knows the fetcher is gone (crashed, or gave
up and removed the file) and fails its clients; the next request fetches
again. The holder unlinks the lock file before releasing it, and a process
that takes a lock checks that its file is still the one at the path, so no
lock file outlives its fetch and no two processes ever hold "the" lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass

from registry.core.grammar import Digest


def _name(digest: Digest) -> str:
    return f"{digest.algorithm}-{digest.hex}"


@dataclass(frozen=True, slots=True)
class SharedPaths:
    """Where the processes of one cache meet for the fetch of `digest`."""

    lock: str  # held by the fetching process for the whole fetch
    data: str  # the download, growing
    size: str  # the blob's size, written once the upstream answered

    @classmethod
    def of(cls, tmp_dir: str, digest: Digest) -> SharedPaths:
        base = os.path.join(tmp_dir, f"shared-{_name(digest)}")
        return cls(base + ".lock", base + ".data", base + ".size")


def try_lock(path: str) -> int | None:
    """An open descriptor holding an exclusive flock on `path`, or None when
    another process holds it. Blocking file work: run it off the event loop."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # The holder unlinks the file before it lets go (`unlock`): a lock taken on
        # a file no longer at `path` guards nothing, so take the current one.
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = -1
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)


def unlock(fd: int, path: str) -> None:
    """Remove the lock file, then release it (see try_lock)."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)


def publish_size(paths: SharedPaths, size: int) -> None:
    """Tell followers the size (atomically: a follower never reads half a number)."""
    tmp = f"{paths.size}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(str(size))
    os.replace(tmp, paths.size)


def read_size(paths: SharedPaths) -> int | None:
    try:
        with open(paths.size) as f:
            text = f.read(32)
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def remove(*files: str) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def holder_gone(paths: SharedPaths) -> bool:
    """True when no process holds the fetch's lock any more (it finished, failed
    or died). Takes and releases the lock to find out."""
    fd = try_lock(paths.lock)
    if fd is None:
        return False
    unlock(fd, paths.lock)
    return True
