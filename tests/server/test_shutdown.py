"""SIGTERM stops the server promptly, also right after writes the index has queued.

Regression: the index writer waited with asyncio.wait_for; on Python 3.11 a cancel
landing while wait_for cancels its inner wait after a timeout is lost, and the
server hung at shutdown about one time in two after a push."""

from __future__ import annotations

import subprocess
import time

from api.helpers import push_image


def test_sigterm_after_pushes_exits_promptly(start_registry, tmp_path):
    for round_ in range(5):
        reg = start_registry(tmp_path / f"r{round_}")
        push_image(reg, "app/one", "v1")
        started = time.monotonic()
        reg.process.terminate()
        try:
            reg.process.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"round {round_}: still running 10 s after SIGTERM") from None
        assert reg.process.returncode == 0, reg.log()
        assert time.monotonic() - started < 10
