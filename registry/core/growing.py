"""A file that is still being written, followed by readers as it grows.

The node cache downloads a blob once into a file and serves every waiting
client from that file as the bytes arrive; `GrowingFile` is the rendezvous
between the one writer and its readers (see `serving.Progress`). Readers block
on a condition from the sendfile threads, so it uses `threading`, not asyncio.
"""

from __future__ import annotations

import threading


class WriterFailed(Exception):
    """The bytes a reader waits for will never arrive: the writer failed."""


class GrowingFile:
    """Progress of one file being written: bytes so far, and whether it is done."""

    def __init__(self, size: int | None = None) -> None:
        self.expected = size
        self._cond = threading.Condition()
        self._written = 0
        self._complete = False
        self._error: BaseException | None = None

    @property
    def written(self) -> int:
        return self._written

    @property
    def done(self) -> bool:
        """The file is complete: every byte a reader can want is in it."""
        return self._complete

    def advance(self, written: int) -> None:
        """The writer has now written `written` bytes in total (and they are readable)."""
        with self._cond:
            self._written = max(self._written, written)
            self._cond.notify_all()

    def complete(self) -> None:
        with self._cond:
            self._complete = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def wait_beyond(self, offset: int, timeout: float) -> int:
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._error is not None or self._complete or self._written > offset,
                timeout)
            if self._error is not None:
                raise WriterFailed(str(self._error)) from self._error
            if not done:
                raise TimeoutError("no progress on the file being written")
            return self._written
