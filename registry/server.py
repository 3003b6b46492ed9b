"""Running the app: uvloop, TLS, and N worker processes sharing the port.

With `[server] workers = N > 1` the parent forks N children before any event
loop or thread exists; each binds the same address with SO_REUSEPORT and the
kernel spreads connections across them. Storage is the only shared state, so
workers need no coordination (the SQLite index copes with several writers).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor

import uvloop
from aiohttp import web

from registry.api import protocol
from registry.app import running
from registry.config import Config
from registry.core.cache import Generations

log = logging.getLogger("registry")


def ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.server.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.server.tls_cert, config.server.tls_key)
    return ctx


async def _serve(config: Config, reuse_port: bool, generations: Generations | None) -> None:
    loop = asyncio.get_running_loop()
    # Hashing and file I/O run on threads; give concurrent pushes enough of them.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="io"))
    protocol.install()
    async with running(config, generations=generations) as dispatcher:
        # aiohttp's low-level server: the dispatcher is the whole application.
        # A large read buffer: request bodies arrive in big chunks, with fewer pauses.
        server = web.Server(dispatcher.handle, read_bufsize=1 << 21,
                            access_log=log if config.server.log_level == "debug" else None)
        runner = web.ServerRunner(server, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, config.server.host, config.server.port,
                               ssl_context=ssl_context(config), reuse_port=reuse_port or None,
                               backlog=1024)
            await site.start()
            scheme = "https" if config.server.tls_cert else "http"
            log.info("registry listening on %s://%s (pid %d, storage %s)", scheme,
                     config.server.listen, os.getpid(), config.storage.driver)
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()


def run_worker(config: Config, reuse_port: bool = False,
               generations: Generations | None = None) -> None:
    uvloop.run(_serve(config, reuse_port, generations))


def serve(config: Config) -> int:
    logging.basicConfig(
        level=config.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
    workers = config.server.workers
    if workers <= 1:
        run_worker(config)
        return 0
    from registry.index.db import Index

    Index.prepare(config.index.path)
    generations = Generations(shared=True)  # before the fork, so every worker maps it
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # child: never return into the parent's code
            code = 0
            try:
                run_worker(config, reuse_port=True, generations=generations)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status
