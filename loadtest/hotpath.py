"""`python -m loadtest hotpath`: one manifest GET's cost inside the server process.

Runs the registry of a checkout (`--src`, default this one) in this process, as
`registry serve` runs it (aiohttp's low-level server, the access log at `--log-level`,
request metrics on), seeds `loadtest/app:latest`, then feeds raw GET requests into
aiohttp's RequestHandler through an in-memory transport: the whole request path
(parser, dispatcher, handler, response, access log) without sockets, wrk or other
processes. It prints CPU microseconds per request (process time, median and best of
the rounds).

The socket work a real server adds (a read and a writev per request, epoll) is left
out on purpose: what is left is what our code and aiohttp decide. Process time
still moves with a busy machine; under `valgrind --tool=cachegrind` the instruction
count is exact whatever else runs: run it with `--requests 500` and `--requests
4500`, `--rounds 1 --warm 200`, and divide the difference by 4000 (as
docs/benchmarks.md does). OpenBLAS (numpy, which sqlite_utils imports) is held to one
thread here: its idle worker threads spin for a while after start, for as long as
the wall clock says, which under valgrind put up to 15,000 instructions of noise on
a request's count; they do nothing for a request.

  --auth      token auth as `bench --auth` sets it (anonymous pulls of loadtest/*)
  --bearer    with --auth: each request carries a token from /token
  --pad-header N  instead of the token, an X-Pad header of N bytes (what parsing a
              header that long costs, to tell it from checking a token)
  --profile F write a cProfile of the measured rounds to F
"""

from __future__ import annotations

import os

# Before numpy is imported (by sqlite_utils, with the registry): see above.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCEPT = (b"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
          b"application/vnd.docker.distribution.manifest.v2+json, "
          b"application/vnd.docker.distribution.manifest.list.v2+json")


class _Transport(asyncio.Transport):
    """Counts what the server writes and wakes the driver when a response went out."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.waiter: asyncio.Future[None] | None = None
        self._closing = False

    def write(self, data: Any) -> None:
        self.sent += len(data)
        self._wake()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.sent += len(chunk)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000),
                "sockname": ("127.0.0.1", 5000)}.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _run(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    from aiohttp import BasicAuth, web

    from loadtest import scenarios
    from loadtest.client import RegistryClient
    from loadtest.data import sha256_digest
    from registry import server as serving
    from registry.api import protocol
    from registry.api.access_log import AccessLog
    from registry.app import running
    from registry.config import load

    overrides: dict[str, Any] = {"storage": {"root": f"{tmp}/storage"},
                                 "index": {"path": f"{tmp}/index.sqlite"},
                                 "server": {"log_level": args.log_level}}
    if args.auth:
        from loadtest.cli import AUTH_USER, auth_settings

        overrides["auth"] = tomllib.loads(
            "\n".join(f"{k} = {v}" for k, v in auth_settings().items()))
    config = load(env={}, overrides=overrides)
    serving._logging(config)
    protocol.install()
    async with running(config) as dispatcher:
        s = config.server
        server = web.Server(dispatcher.handle, read_bufsize=1 << 21,
                            access_log=serving.access_log if s.access_log else None,
                            access_log_class=AccessLog.configure(s.log_format,
                                                                 s.trusted_proxies))
        runner = web.ServerRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        auth = BasicAuth(*AUTH_USER) if args.auth else None
        header = b""
        async with RegistryClient(f"http://127.0.0.1:{port}", 4, auth=auth) as c:
            manifest, cfg, layers = scenarios._app_manifest()
            for blob in (cfg, *layers):
                await c.ensure_blob(scenarios.REPO_APP, blob, sha256_digest(blob))
            await c.put_manifest(scenarios.REPO_APP, scenarios.TAG, manifest)
            if args.bearer:
                _, _, body = await c.request(
                    "GET", f"/token?service=registry&scope=repository:{scenarios.REPO_APP}:pull")
                header = b"Authorization: Bearer " + json.loads(body)["token"].encode() + b"\r\n"
        if args.pad_header:  # what carrying a token costs the parser, without checking it
            header = b"X-Pad: " + b"a" * args.pad_header + b"\r\n"
        request = (f"GET /v2/{scenarios.REPO_APP}/manifests/{scenarios.TAG} HTTP/1.1\r\n"
                   "Host: 127.0.0.1\r\n").encode() + b"Accept: " + ACCEPT + b"\r\n" + header \
            + b"\r\n"
        handler = server()
        transport = _Transport()
        handler.connection_made(transport)
        loop = asyncio.get_running_loop()

        async def one() -> None:
            transport.waiter = loop.create_future()
            handler.data_received(request)
            await transport.waiter

        for _ in range(args.warm):  # fill the caches first
            await one()
        sent = transport.sent
        await one()
        if transport.sent - sent < len(manifest):
            raise SystemExit("the GET did not answer the manifest: check --auth/--bearer")
        profile = None
        if args.profile:
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        rounds = []
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(args.requests):
                await one()
            rounds.append((time.process_time() - started) / args.requests * 1e6)
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        await runner.cleanup()
    return {"src": str(args.src), "us_per_request_median": statistics.median(rounds),
            "us_per_request_best": min(rounds), "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest hotpath", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, default=REPO_ROOT,
                   help="checkout whose registry runs (default: this one)")
    p.add_argument("--requests", type=int, default=5000, help="requests per round (5000)")
    p.add_argument("--rounds", type=int, default=5, help="measured rounds (5)")
    p.add_argument("--warm", type=int, default=2000, help="requests before measuring (2000)")
    p.add_argument("--log-level", default="info", help="[server] log_level (info)")
    p.add_argument("--auth", action="store_true", help="token auth, anonymous pulls")
    p.add_argument("--bearer", action="store_true", help="with --auth: a Bearer token")
    p.add_argument("--pad-header", type=int, default=0, metavar="N",
                   help="instead of a token, an X-Pad header of N bytes")
    p.add_argument("--profile", help="write a cProfile of the measured rounds here")
    args = p.parse_args(argv)
    if args.bearer and not args.auth:
        p.error("--bearer needs --auth")
    if not 1 <= args.requests <= 1_000_000 or not 1 <= args.rounds <= 100 \
            or not 0 <= args.warm <= 1_000_000:
        p.error("--requests in [1, 1000000], --rounds in [1, 100], --warm in [0, 1000000]")
    src = args.src.resolve()
    sys.path.insert(0, str(src))  # `registry` from that checkout (loadtest from this one)
    sys.modules.pop("registry", None)
    tmp = tempfile.mkdtemp(prefix="loadtest-hotpath-")
    # The access lines go to stderr: to a file in the temp dir, as a server's log would.
    saved = os.dup(2)
    log = os.open(os.path.join(tmp, "server.log"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(log, 2)
    try:
        import uvloop

        result = uvloop.run(_run(args, tmp))
    finally:
        lines = sys.modules.get("registry.api.access_log")
        if lines is not None:  # the last batch of access lines, into the temp dir's log
            lines.LINES.flush()
        os.dup2(saved, 2)
        os.close(log)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{result['src']}: {result['us_per_request_median']:.1f} us CPU per manifest GET "
          f"(median of {args.rounds} rounds of {args.requests}; best "
          f"{result['us_per_request_best']:.1f}; rounds "
          + ", ".join(f"{r:.1f}" for r in result["rounds"]) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
