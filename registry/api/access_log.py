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
from aiohttp.http import HttpVersion11

from registry.core.access import IDENTITY, REQUEST_ID, Networks, client_address, trusted_networks


class _Lines:
    """Access lines of this process, written to stderr in batches: formatting and
    writing each through `logging` cost a third of a small request."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.pid = os.getpid()
        self.flush_scheduled = False
        self._ms = -1
        self._second = -1
        self._stamp = ""
        self._head = ""

    def forked(self) -> None:
        """In a forked worker: its own pid and its own batch (os.register_at_fork)."""
        self.pid, self.pending, self.flush_scheduled = os.getpid(), [], False
        self._ms = -1

    def head(self, now: float) -> str:
        """The line's start up to the message, as the logging format writes it;
        made once a millisecond (at 10,000 requests a second, one in ten)."""
        ms = int(now * 1000)
        if ms != self._ms:
            self._ms = ms
            second = ms // 1000
            if second != self._second:  # strftime once a second
                self._second = second
                self._stamp = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(second))
            self._head = f"{self._stamp},{ms % 1000:03d} INFO registry.access[{self.pid}]: "
        return self._head

    def add(self, line: str) -> None:
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
# A forked worker starts its own batch, under its own pid (checked once a fork, not
# once a request: os.getpid() is a system call).
os.register_at_fork(after_in_child=LINES.forked)


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
        # This runs once a request: it reads the request's values from their dict
        # (`request.get` raises and catches KeyError for an absent identity), and
        # takes the time stamp, pid and HTTP version from what was made before.
        values = request._state
        user = getattr(values.get(IDENTITY), "name", "") or "-"
        rid = values.get(REQUEST_ID, "-")
        # Paths arrive percent-decoded: keep a line one line whatever they hold.
        path = request.path[:1024]
        if "\n" in path or "\r" in path:
            path = path.replace("\n", "%0A").replace("\r", "%0D")
        head = LINES.head(_time.time())
        if self.json_format:
            body = json.dumps({
                "method": request.method, "path": path, "status": response.status,
                "bytes": response.body_length, "ms": round(time * 1000, 1),
                "client": self.client(request), "user": user, "request_id": rid})
            LINES.add(f"{head}{body}\n")
            return
        version = request.version
        ver = "1.1" if version == HttpVersion11 else f"{version.major}.{version.minor}"
        client = self.client(request) if self.trusted else (request.remote or "")
        # The request line as the common log format writes it (less the query).
        LINES.add(f'{head}{client} {user} "{request.method} {path} HTTP/{ver}" '
                  f"{response.status} {response.body_length} {time * 1000:.1f}ms {rid}\n")

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
