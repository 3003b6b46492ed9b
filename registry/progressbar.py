"""A progress bar for long CLI commands (`registry spack import`): redrawn in
place on a terminal, a line every tenth of the way otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from registry.units import human_size


class ProgressBar:
    """Files and bytes done out of a known total; `update` is cheap to call per
    chunk (it redraws at most ten times a second)."""

    def __init__(self, files: int, nbytes: int, out: TextIO = sys.stderr,
                 width: int = 30) -> None:
        self.files, self.nbytes = files, nbytes
        self.done_files = self.done_bytes = 0
        self.out, self.width = out, width
        self.tty = out.isatty()
        self.start = self._drawn = time.monotonic()
        self._tenth = 0

    def update(self, files: int, nbytes: int) -> None:
        self.done_files += files
        self.done_bytes += nbytes
        now = time.monotonic()
        if self.tty:
            if now - self._drawn >= 0.1:
                self._drawn = now
                self.out.write("\r" + self.line())
                self.out.flush()
        elif self.files:
            tenth = 10 * self.done_files // self.files
            if tenth > self._tenth:
                self._tenth = tenth
                self.out.write(self.line() + "\n")
                self.out.flush()

    def line(self) -> str:
        frac = self.done_bytes / self.nbytes if self.nbytes else (
            self.done_files / self.files if self.files else 1.0)
        frac = min(frac, 1.0)
        filled = int(self.width * frac)
        rate = self.done_bytes / max(time.monotonic() - self.start, 1e-6)
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done_files}/{self.files} "
                f"files, {human_size(self.done_bytes)}/{human_size(self.nbytes)}, "
                f"{human_size(rate)}/s")

    def close(self) -> None:
        if self.tty:
            self.out.write("\r" + self.line() + "\n")
            self.out.flush()
