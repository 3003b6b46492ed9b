"""Running the app: uvloop, TLS, and N worker processes sharing the port.

With `[server] workers = N > 1` the parent forks N children before any event
loop or thread exists; each binds the same address with SO_REUSEPORT and the
kernel spreads connections across them. Storage is the only shared state, so
workers need no coordination (the SQLite index copes with several writers).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvloop
from aiohttp import web

from registry import __version__
from registry.allocator import pin_mmap_threshold
from registry.api import protocol
from registry.api.access_log import LINES, AccessLog
from registry.api.dispatch import Dispatcher
from registry.api.request_metrics import multiprocess_dir
from registry.app import running
from registry.config import Config, ConfigError
from registry.core.cache import Generations
from registry.lifecycle import Stopping
from registry.startup import StartupError, preflight, ssl_context

log = logging.getLogger("registry")
access_log = logging.getLogger("registry.access")
# Seconds a request cut at the end of the drain gets to wind up (write out what it
# received) before it is cancelled.
CUT_GRACE = 5.0


async def _serve(config: Config, reuse_port: bool, generations: Generations | None,
                 reload: Callable[[], Config] | None = None) -> None:
    loop = asyncio.get_running_loop()
    # Hashing and file I/O run on threads; give concurrent pushes enough of them.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="io"))
    async with running(config, generations=generations) as dispatcher:
        protocol.install(dispatcher)  # parse errors in the format of the path's family
        # aiohttp's low-level server: the dispatcher is the whole application.
        # A large read buffer: request bodies arrive in big chunks, with fewer pauses.
        s = config.server
        server = web.Server(dispatcher.handle, read_bufsize=1 << 21,
                            access_log=access_log if s.access_log else None,
                            access_log_class=AccessLog.configure(s.log_format,
                                                                 s.trusted_proxies))
        # The drain itself is ours (_drain); aiohttp's shutdown only closes what is
        # left, giving a handler still winding up CUT_GRACE seconds.
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=CUT_GRACE)
        await runner.setup()
        try:
            tls = ssl_context(config)
            site = web.TCPSite(runner, s.host, s.port, ssl_context=tls,
                               reuse_port=reuse_port or None, backlog=1024)
            await site.start()
            log.info("registry %s listening on %s (pid %d, storage %s, index %s)", __version__,
                     _url(config), os.getpid(), _store(config), config.index.path)
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            # New connections use a reloaded certificate; open ones keep theirs. (A
            # SIGHUP must never stop the server, TLS or not.)
            loop.add_signal_handler(signal.SIGHUP, _reload, tls, config, reload, dispatcher)
            await stop.wait()
            await _drain(runner, dispatcher, len(server.connections), s.drain_seconds)
        finally:
            await runner.cleanup()
            LINES.flush()  # the last requests' lines before the last line
            log.info("stopped")


async def _drain(runner: web.ServerRunner, dispatcher: Dispatcher, connections: int,
                 seconds: int) -> None:
    """Stop accepting, let the requests in flight finish for up to `seconds`, then cut
    the ones still running (a cut upload keeps what arrived).

    aiohttp's own graceful shutdown cannot do this: it stops reading every
    connection as soon as it begins, so a request body still arriving never
    completes, and its handler waits out the whole timeout for bytes that are
    dropped. Here the connections go on reading until the end of the drain."""
    for site in list(runner.sites):
        await site.stop()  # closes the listening sockets only
    log.info("stopping: no new connections; %d open, up to %d s to finish",
             connections, seconds)
    # From here on answers close their connection.
    cut = await dispatcher.in_flight.drain(float(seconds), _cut, CUT_GRACE)
    if cut:
        log.warning("cut %d request(s) still running after %d s", cut, seconds)


def _cut(request: web.BaseRequest) -> None:
    # A handler reading the body sees it end as if the client were gone; one that
    # is sending is cancelled by aiohttp's shutdown after CUT_GRACE.
    request.content.set_exception(Stopping("the registry is stopping"))


def _url(config: Config) -> str:
    return f"{'https' if config.server.tls_cert else 'http'}://{config.server.listen}"


def _store(config: Config) -> str:
    if config.cache.enabled:
        return f"node cache of {config.cache.upstream} in {config.cache.dir}"
    if config.storage.driver == "s3":
        return f"s3://{config.storage.bucket}/{config.storage.prefix}"
    return f"{config.storage.driver} {os.path.abspath(config.storage.root)}"


def _reload(tls: ssl.SSLContext | None, config: Config,
            reload: Callable[[], Config] | None, dispatcher: Any) -> None:
    """SIGHUP: the TLS certificate, the access rules and config users, and what
    else the dispatcher's `reloads` re-read (the trust policies)."""
    _reload_tls(tls, config)
    if reload is None:
        return
    try:
        new = reload()
    except ConfigError as exc:
        log.error("SIGHUP: the config has problems, keeping the old rules: %s", exc)
        return
    for hook in dispatcher.reloads:
        hook(new)
    guard = dispatcher.access
    if not hasattr(guard, "rules"):
        return
    from registry.auth.wiring import parse

    try:
        rules, users = parse(new.auth)
    except ConfigError as exc:
        log.error("SIGHUP: the config has problems, keeping the old rules: %s", exc)
        return
    guard.rules = rules
    guard.logins.config_users = users
    log.info("reloaded %d access rule(s) and %d config user(s)", len(rules.rules), len(users))


def _reload_tls(tls: ssl.SSLContext | None, config: Config) -> None:
    if tls is None:
        log.info("SIGHUP: no TLS certificate to reload")
        return
    try:
        tls.load_cert_chain(config.server.tls_cert, config.server.tls_key)
        log.info("reloaded the TLS certificate %s", config.server.tls_cert)
    except (OSError, ssl.SSLError) as exc:
        log.error("SIGHUP: could not reload the TLS certificate, keeping the old one: %s", exc)


def run_worker(config: Config, reuse_port: bool = False,
               generations: Generations | None = None,
               reload: Callable[[], Config] | None = None) -> None:
    # What the imports built lives as long as the process: out of the collector's sight,
    # neither a full collection while serving nor the one at exit walks it again.
    gc.freeze()
    pin_mmap_threshold()  # large transient buffers go back to the system when freed
    uvloop.run(_serve(config, reuse_port, generations, reload))


def _logging(config: Config) -> None:
    logging.basicConfig(
        level=config.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
    # Their debug output carries request headers: Authorization, signatures.
    for noisy in ("botocore", "aiobotocore", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, log.getEffectiveLevel()))


def serve(config: Config, reload: Callable[[], Config] | None = None) -> int:
    """Run the registry until SIGTERM/SIGINT; `reload` re-reads the config on SIGHUP."""
    _logging(config)
    try:
        locks = preflight(config)
    except StartupError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2
    try:
        return _serve_workers(config, reload)
    finally:
        for fd in locks:
            os.close(fd)


# prctl(2): the signal the kernel sends this process when its parent dies.
PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """In a forked worker: SIGTERM (a drain, then exit) when the parent dies, even by
    SIGKILL, which it cannot pass on. Otherwise the orphan would serve on, holding
    the port and the store's state, with nobody left to stop it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("worker %d: prctl(PR_SET_PDEATHSIG): %s", os.getpid(),
                        os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError):  # not Linux: no parent-death signal
        log.warning("worker %d will not notice its parent's death", os.getpid())
    if os.getppid() != parent:  # it died before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _serve_workers(config: Config, reload: Callable[[], Config] | None) -> int:
    workers = config.server.workers
    if workers <= 1:
        run_worker(config, reload=reload)
        return 0
    from registry.index.db import Index

    Index.prepare(config.index.path)
    generations = Generations(shared=True)  # before the fork, so every worker maps it
    multiprocess_dir(config.index.path + ".metrics")  # /metrics adds up every worker
    children: list[int] = []
    parent = os.getpid()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # child: never return into the parent's code
            code = 0
            try:
                _die_with(parent)
                run_worker(config, reuse_port=True, generations=generations, reload=reload)
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
    signal.signal(signal.SIGHUP, forward)  # each worker reloads its certificate
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status
