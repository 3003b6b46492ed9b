"""The audit log: security events (logins, token grants, denials, deletions) as JSON lines.

One file shared by all the worker processes, rotated by size. Every event is a single
`os.write` on an `O_APPEND` descriptor, so the kernel keeps lines from different processes
whole and in one piece; rotation is done by whichever process sees the file cross its limit,
under an `flock` so that two processes crossing together rotate once. Values come from
clients (user names, paths, user agents): they are JSON-escaped and clipped, so one event is
always one bounded, parseable line.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import math
import os
import time

log = logging.getLogger("registry.audit")

MAX_LINE = 16 << 10
_CLIPS = (1024, 128)  # per-string limits, in characters; the second if the first is too long
_CHECK_EVERY = 100  # writes between checks that the path is still our file
_CHECK_SECONDS = 1.0
_REPORT_SECONDS = 60.0


def _clip(value: object, limit: int) -> object:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # json.dumps would write NaN, which is not JSON
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {_clip(str(k), limit): _clip(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clip(v, limit) for v in value]
    return _clip(str(value), limit)


def _encode(event: str, fields: dict[str, object]) -> bytes:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    for limit in _CLIPS:
        # time and event first, and a field cannot overwrite them
        record: dict[str, object] = {"time": now[:-6] + "Z", "event": _clip(event, limit)}
        for key, value in fields.items():
            if value is not None:
                record.setdefault(key, _clip(value, limit))
        line = json.dumps(record, separators=(",", ":")) + "\n"
        if len(line) <= MAX_LINE:
            return line.encode()
    # Too many fields even clipped hard: keep the fact that it happened.
    record = {"time": now[:-6] + "Z", "event": _clip(event, 128), "truncated": True}
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


class AuditLog:
    """Security events as JSON lines in one file, rotated by size.

    Safe to share between forked worker processes: each appends with one write per line,
    and each notices when another has rotated the file away from under its descriptor.
    `keep` is how many rotated files (path.1 .. path.keep) to keep; 0 never rotates.
    Writing is synchronous but a small append, cheap enough for the event loop.
    """

    def __init__(self, path: str, max_bytes: int = 10 << 20, keep: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._fd: int | None = None
        self._ino = 0
        self._writes = 0  # since the last check of the path
        self._checked = 0.0
        self._reported: float | None = None

    def write(self, event: str, **fields: object) -> None:
        """Append one event: {"time": RFC 3339 UTC with milliseconds, "event": event, **fields}.
        Fields with value None are left out. Never raises (an unwritable log is reported once to
        the `registry.audit` logger at ERROR and then every 60 s at most, and the request goes on).
        """
        try:
            self._append(_encode(event, fields))
        except Exception as exc:  # an audit failure must not fail the request it records
            with contextlib.suppress(OSError):
                self.close()  # the next write opens again: the disk may have come back
            now = time.monotonic()
            if self._reported is None or now - self._reported >= _REPORT_SECONDS:
                self._reported = now
                log.error("audit log %s: cannot write, events are lost: %r", self.path, exc)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _append(self, line: bytes) -> None:
        now = time.monotonic()
        self._writes += 1
        if self._fd is None:
            self._open()
        elif self._writes >= _CHECK_EVERY or now - self._checked >= _CHECK_SECONDS:
            self._reopen_if_moved()
        assert self._fd is not None
        if os.write(self._fd, line) != len(line):
            raise OSError("short write (disk full?)")
        # With O_APPEND the offset is where our line ended: the size, as far as we know.
        if self.keep > 0 and os.lseek(self._fd, 0, os.SEEK_CUR) >= self.max_bytes:
            self._rotate()

    def _open(self) -> None:
        self.close()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        self._ino = os.fstat(self._fd).st_ino
        self._writes, self._checked = 0, time.monotonic()

    def _reopen_if_moved(self) -> None:
        # Another process rotated: our descriptor is on path.1 (or further), reopen path.
        try:
            moved = os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            moved = True
        if moved:
            self._open()
        else:
            self._writes, self._checked = 0, time.monotonic()

    def _rotate(self) -> None:
        lock = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Our write may have crossed the limit on a file another process already rotated:
            # then path is a fresh, small file and must not be rotated again.
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.path).st_size >= self.max_bytes:
                    for i in range(self.keep - 1, 0, -1):
                        with contextlib.suppress(FileNotFoundError):
                            os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
                    os.replace(self.path, self.path + ".1")
            self._open()
        finally:
            os.close(lock)  # releases the flock
