"""One line a request at info level: what operators read first.

aiohttp calls `AccessLog.log` after each response with its duration. The line
holds the time (from the logging format), method, path (no query: tokens and
signatures travel there), status, bytes sent, duration, client address,
the user or robot once auth knows it, and the request id that the dispatcher
also sends back as `X-Request-Id`. `[server] log_format = "json"` writes the same
fields as one JSON object. The client address is the peer's, or the first
address of X-Forwarded-For when the peer is one of `[server] trusted_proxies`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID = "request_id"
IDENTITY = "auth.identity"  # set by registry.auth's guard


class AccessLog(AbstractAccessLogger):
    """aiohttp's access logger, in our format (text or JSON)."""

    json_format = False
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def configure(cls, log_format: str, trusted_proxies: list[str]) -> type[AccessLog]:
        """A subclass with these settings (aiohttp instantiates the class itself)."""
        return type("ConfiguredAccessLog", (cls,), {
            "json_format": log_format == "json",
            "trusted": tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)})

    def client(self, request: web.BaseRequest) -> str:
        peer = request.remote or ""
        if self.trusted and "X-Forwarded-For" in request.headers:
            try:
                address = ipaddress.ip_address(peer)
            except ValueError:
                return peer
            if any(address in net for net in self.trusted):
                first = request.headers["X-Forwarded-For"].split(",")[0].strip()[:64]
                try:
                    return str(ipaddress.ip_address(first))
                except ValueError:
                    return peer
        return peer

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        who = request.get(IDENTITY)
        fields: dict[str, Any] = {
            "method": request.method, "path": request.path[:1024], "status": response.status,
            "bytes": response.body_length, "ms": round(time * 1000, 1),
            "client": self.client(request),
            "user": getattr(who, "name", "") or "-",
            "request_id": request.get(REQUEST_ID, "-"),
        }
        if self.json_format:
            self.logger.info(json.dumps(fields))
        else:
            fields["version"] = f"{request.version.major}.{request.version.minor}"
            # The request line as the common log format writes it (less the query).
            self.logger.info('%(client)s %(user)s "%(method)s %(path)s HTTP/%(version)s" '
                             '%(status)s %(bytes)s %(ms)sms %(request_id)s', fields)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
