"""No worker outlives its parent: with `[server] workers = 2`, a parent killed by
SIGKILL (what a harness or systemd does after its stop timeout) takes its workers
with it, so no orphan keeps the port or the store.

Regression (issue 24): the workers were never told and served on forever."""

from __future__ import annotations

import os
import signal
import subprocess

from harness import wait_for


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by whoever adopted it, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_workers_exit_when_the_parent_is_killed(start_registry):
    reg = start_registry(config="[server]\nworkers = 2\n")
    workers = wait_for(lambda: _children(reg.pid), lambda pids: len(pids) == 2)
    assert len(workers) == 2
    try:
        reg.process.kill()
        reg.process.wait(10)
        left = wait_for(lambda: [p for p in workers if alive(p)], lambda pids: not pids)
        assert left == [], f"workers {left} outlived their parent"
    finally:  # never leave an orphan behind, even when the test fails
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
