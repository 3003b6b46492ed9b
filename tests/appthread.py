"""The registry application in this process, on an event loop of its own thread,
listening on 127.0.0.1 as the server process would (the same aiohttp low-level server,
the same protocol hooks). Synchronous clients (requests, raw sockets) reach it as they
would a server process, while a blocking call the registry makes on that loop is seen
by blockbuster, which patches the whole process (tests/api/conftest.py).

One start costs a few milliseconds on memory and a bucket prefix on S3, against a
second or more for a `python -m registry` process."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

from registry.api import protocol
from registry.app import running
from registry.config import Config

# Loggers whose records an in-process registry's log() shows.
LOGGERS = ("registry", "aiohttp")


class _Captured(logging.Handler):
    """The records of the loop thread (and of anything logging under LOGGERS while the
    app runs), formatted with their tracebacks, as the server process writes them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + "\n")


@dataclass
class AppRegistry:
    """An in-process registry the tests reach at `url`, shaped like RunningRegistry."""

    host: str
    driver: str
    data_dir: Path | None = None
    scheme: str = "http"
    dispatcher: Any = None
    _stop: Any = None
    _thread: threading.Thread | None = None
    _log: _Captured = field(default_factory=_Captured)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def repo(self, prefix: str = "test") -> str:
        """A fresh repository name, so tests sharing a registry never collide."""
        return f"{prefix}/{uuid.uuid4().hex[:12]}"

    def log(self) -> str:
        return "".join(self._log.lines)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop()
        self._thread.join(60)
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self._log)
        self._thread = None


def start_app(config: Config, driver: str, data_dir: Path | None = None,
              timeout: float = 60.0) -> AppRegistry:
    """Start `config`'s registry on a loop thread; returns once it listens."""
    reg = AppRegistry(host="", driver=driver, data_dir=data_dir)
    for name in LOGGERS:
        logging.getLogger(name).addHandler(reg._log)
    started = threading.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        reg._stop = lambda: loop.call_soon_threadsafe(stop.set)
        # Hashing and file I/O run on threads: as many as the server gives them.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="io"))
        protocol.install()
        async with running(config) as dispatcher:
            server = web.Server(dispatcher.handle, read_bufsize=1 << 21, access_log=None)
            runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=5.0)
            await runner.setup()
            try:
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                reg.host, reg.dispatcher = f"127.0.0.1:{port}", dispatcher
                started.set()
                await stop.wait()
            finally:
                await runner.cleanup()

    def main() -> None:
        try:
            uvloop.run(serve())  # the server's loop, as registry/server.py runs it
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
            started.set()

    reg._thread = threading.Thread(target=main, name=f"app-{driver}", daemon=True)
    reg._thread.start()
    if not started.wait(timeout) or failure:
        reg.stop()
        raise RuntimeError(f"in-process registry on {driver} did not start: {failure}\n"
                           f"{reg.log()}")
    return reg
