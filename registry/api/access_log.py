"""One line a request at info level: what operators read first.

aiohttp calls `AccessLog.log` after each response with its duration; lines are
written in batches (every 0.2 s or 256 lines) rather than through `logging`. The line
holds the time (from the logging format), method, path (no query: tokens and
signatures travel there), status, bytes sent, duration, client address,
the user or robot once auth knows it, and the request id that the dispatcher
also sends back as `X-Request-Id`. `[server] log_format = "json"` writes the same
fields as one JSON object. The client address is the peer's, or the one
X-Forwarded-For names when the peer is one of `[server] trusted_proxies`
(core.access.client_address: the one auth counts failed logins by).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import sys
import time as _time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from registry.core.access import IDENTITY, REQUEST_ID, Networks, client_address, trusted_networks


class _Lines:
    """Access lines of this process, written to stderr in batches: formatting and
    writing each through `logging` cost a third of a small request."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.pid = 0
        self.flush_scheduled = False
        self._second = -1
        self._stamp = ""

    def stamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second = second
            self._stamp = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(second))
        return f"{self._stamp},{int(now * 1000) % 1000:03d}"

    def add(self, line: str) -> None:
        pid = os.getpid()
        if pid != self.pid:  # a forked worker starts its own batch
            self.pid, self.pending, self.flush_scheduled = pid, [], False
        self.pending.append(line)
        if len(self.pending) >= 256:
            self.flush()
        elif not self.flush_scheduled:
            try:
                asyncio.get_running_loop().call_later(0.2, self.flush)
                self.flush_scheduled = True
            except RuntimeError:  # no loop: write at once
                self.flush()

    def flush(self) -> None:
        self.flush_scheduled = False
        if not self.pending:
            return
        data = "".join(self.pending).encode(errors="replace")
        self.pending = []
        try:
            sys.stderr.flush()  # after what logging wrote before these lines
            os.write(sys.stderr.fileno(), data)
        except (OSError, ValueError):
            pass  # a closed or full stderr must not fail requests


LINES = _Lines()
atexit.register(LINES.flush)


class AccessLog(AbstractAccessLogger):
    """aiohttp's access logger, in our format (text or JSON)."""

    json_format = False
    trusted: Networks = ()

    @classmethod
    def configure(cls, log_format: str, trusted_proxies: list[str]) -> type[AccessLog]:
        """A subclass with these settings (aiohttp instantiates the class itself)."""
        return type("ConfiguredAccessLog", (cls,), {
            "json_format": log_format == "json",
            "trusted": trusted_networks(trusted_proxies)})

    def client(self, request: web.BaseRequest) -> str:
        peer = request.remote or ""
        if not self.trusted:
            return peer
        return client_address(peer, request.headers.get("X-Forwarded-For"), self.trusted)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        who = request.get(IDENTITY)
        user = getattr(who, "name", "") or "-"
        rid = request.get(REQUEST_ID, "-")
        # Paths arrive percent-decoded: keep a line one line whatever they hold.
        path = request.path[:1024].replace("\n", "%0A").replace("\r", "%0D")
        head = f"{LINES.stamp(_time.time())} INFO registry.access[{os.getpid()}]: "
        if self.json_format:
            body = json.dumps({
                "method": request.method, "path": path, "status": response.status,
                "bytes": response.body_length, "ms": round(time * 1000, 1),
                "client": self.client(request), "user": user, "request_id": rid})
        else:
            version = f"{request.version.major}.{request.version.minor}"
            # The request line as the common log format writes it (less the query).
            body = (f'{self.client(request)} {user} "{request.method} {path} HTTP/{version}" '
                    f"{response.status} {response.body_length} {time * 1000:.1f}ms {rid}")
        LINES.add(head + body + "\n")

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
