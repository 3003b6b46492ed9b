"""Starting and stopping real registry processes for the tests (see conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
HIDDEN = REPO_ROOT / "tests" / "fixtures" / "hidden"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child `python -m registry`: no REGISTRY_* settings leak in
    from the caller, this checkout's code runs whatever `pip install -e`
    last pointed at, and numpy (in the test environment for loadtest's chart only, not
    a registry dependency) is hidden from it, as in a production install: see
    tests/fixtures/hidden/numpy/__init__.py."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), str(HIDDEN)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningRegistry:
    """A registry process the tests can reach at `url`."""

    host: str
    scheme: str = "http"
    process: subprocess.Popen | None = None
    data_dir: Path | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def repo(self, prefix: str = "test") -> str:
        """A fresh repository name, so tests sharing a server never collide."""
        return f"{prefix}/{uuid.uuid4().hex[:12]}"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float = 30.0, **kw) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"registry exited early with code {proc.returncode}")
        try:
            # 401: up, with auth on ([auth] mode = "token").
            if requests.get(f"{url}/v2/", timeout=2, **kw).status_code in (200, 401):
                return
        except requests.RequestException as exc:  # not listening yet
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"registry at {url} not ready: {last}")


def launch(
    tmp: Path,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    config: str | None = None,
    scheme: str = "http",
    verify: bool | str = True,
    data: bool = True,
    port: int | None = None,
) -> RunningRegistry:
    """Start `python -m registry serve` on `port` (default: a free one) with its data
    under `tmp`."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    cmd = [sys.executable, "-m", "registry", "serve", "--listen", f"127.0.0.1:{port}"]
    if data:
        cmd += ["--data", str(tmp / "data")]
    if config is not None:
        cfg = tmp / "registry.toml"
        cfg.write_text(config)
        cmd += ["--config", str(cfg)]
    cmd += args or []
    full_env = child_env(env)
    log_path = tmp / "registry.log"
    # The child has its own copy of the descriptor: ours is closed at once.
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                cwd=tmp)
    reg = RunningRegistry(
        host=f"127.0.0.1:{port}",
        scheme=scheme,
        process=proc,
        data_dir=tmp / "data",
        log_path=log_path,
        env=full_env,
    )
    try:
        wait_ready(reg.url, proc, verify=verify)
    except Exception:
        reg.stop()
        raise RuntimeError(f"registry failed to start:\n{reg.log()}") from None
    return reg




def wait_for(fn, want, deadline: float = 20.0):
    """Poll `fn()` until `want(result)` or `deadline` seconds pass; the last result.
    For state a server applies in the background (a cache's journal, at most every
    half second; another process's writes): poll rather than assume a time."""
    end = time.monotonic() + deadline
    while True:
        got = fn()
        if want(got) or time.monotonic() > end:
            return got
        time.sleep(0.2)


def serve_on_tmpfs(tmp_path, size_mb: int) -> tuple[subprocess.Popen, str]:
    """A registry whose storage is a small tmpfs in a private mount namespace."""
    root = tmp_path / "small"
    root.mkdir()
    port = free_port()
    script = (f"mount -t tmpfs -o size={size_mb}m tmpfs {root} && exec {sys.executable} -m "
              f"registry serve --listen 127.0.0.1:{port} --data {root}")
    env = child_env()
    with open(tmp_path / "small.log", "wb") as log:
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh",
                                 "-c", script], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def poll(check, deadline: float = 20.0, what: str = "the condition"):
    """`check()`'s first truthy result, polled as wait_for does; fails the test when
    `deadline` seconds pass without one."""
    got = wait_for(check, bool, deadline)
    assert got, f"{what} did not hold within {deadline} s"
    return got


async def wait_for_async(fn, want, deadline: float = 20.0):
    """wait_for for in-process tests: await `fn()` until `want(result)` or `deadline`
    seconds pass, without blocking the event loop the registry runs on."""
    import asyncio

    end = time.monotonic() + deadline
    while True:
        got = await fn()
        if want(got) or time.monotonic() > end:
            return got
        await asyncio.sleep(0.02)
