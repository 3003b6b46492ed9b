"""The whole HTTP application: protocol families mounted by path prefix.

aiohttp's low-level server calls `Dispatcher.handle` for every request. No router,
middleware or signals run in between (they were a quarter of the cost of a small
request), so the dispatcher does their work itself:

1. pick the family whose prefix the path starts with (`/v2/` first: the hot path);
2. the family routes the path (and method, and query) to a handler and says what the
   request wants to do (a `Scope`);
3. the access step decides, before any handler and before `100 Continue`;
4. `Expect: 100-continue` is answered once the request is known to be routable;
5. the handler runs; any exception it raises is rendered by the family's own error
   renderer (OCI JSON, S3 XML, plain text, problem JSON, HTML).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from registry.api.access import AccessControl, AllowAll
from registry.api.common import HEADERS_AT, REQUEST_ID_HEADER, Context, caller_of, request_id
from registry.api.request_metrics import FIRST_BYTE_HANDLERS, UPLOADING, RequestMetrics
from registry.core.access import CALLER, REQUEST_ID, Scope
from registry.core.errors import Unsupported
from registry.lifecycle import InFlight

Handler = Callable[[web.BaseRequest, Any, Context], Awaitable[web.StreamResponse]]
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})


class Family(Protocol):
    """One protocol family: its routes and its way of writing errors."""

    name: str
    # Paths this family answers: exactly `root`, or anything under `prefix`.
    prefix: str
    root: str

    def resolve(self, request: web.BaseRequest, path: str) -> tuple[Handler, Any, Scope]:
        """The handler for a raw (still percent-encoded) path, the route object
        given to it, and what the request wants to do. Raises a domain error
        (not found, method not allowed, invalid name) otherwise."""
        ...

    def render_error(self, exc: Exception, request: web.BaseRequest) -> web.StreamResponse:
        """The error response for an exception raised while serving this family.
        Connection errors (the client is gone) are raised again."""
        ...

    def finish(self, response: web.StreamResponse) -> None:
        """Last touches on an unprepared response (protocol headers)."""
        ...


class Dispatcher:
    """Mounts families by prefix and runs the steps above for every request.
    `default` renders errors for paths no family claims."""

    def __init__(self, ctx: Context, default: Family,
                 access: AccessControl | None = None) -> None:
        self.ctx = ctx
        self.default = default
        self._families: list[Family] = []
        self.access = access or AllowAll()
        # Request counts and latencies for /metrics (api.request_metrics), if kept.
        self._metrics: RequestMetrics | None = getattr(ctx.metrics, "requests", None)
        # The requests being handled, which a stop lets finish (server.py drains them);
        # once it is stopping, every answer closes its connection.
        self.in_flight: InFlight[web.BaseRequest] = InFlight()
        # What a SIGHUP re-reads besides the access rules (server.py): each is
        # called with the reloaded config (the trust policies).
        self.reloads: list[Callable[[Any], object]] = []
        # Whether a decorator reads the caller's rights (core.access.CALLER): only then
        # is the request's Caller made (the trust policy sets it; the hot path pays
        # nothing otherwise).
        self.callers = False

    @property
    def access(self) -> AccessControl:
        return self._access

    @access.setter
    def access(self, access: AccessControl) -> None:
        self._access = access
        # For the handlers whose answer depends on who asks (the context is frozen).
        self.ctx = dataclasses.replace(self.ctx, access=access)
        # Allowing everything needs no call at all: the hot path skips it.
        self._check = None if isinstance(access, AllowAll) else access.check

    def mount(self, family: Family) -> None:
        self._families.append(family)
        # Longest prefix first, so a nested mount wins over its parent.
        self._families.sort(key=lambda f: len(f.prefix), reverse=True)

    def family_for(self, path: str) -> Family | None:
        default = self.default  # the OCI family: the hot path, checked first
        if path.startswith(default.prefix) or path == default.root:
            return default
        for family in self._families:
            if path.startswith(family.prefix) or path == family.root:
                return family
        return None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        # One function for the whole request, every step inline: this runs for
        # every request, and each call and request item costs (the family and the
        # handler's name stay in locals for the metrics, not in the request).
        metrics = self._metrics
        started = time.perf_counter() if metrics is not None else 0.0
        if metrics is not None:
            metrics.active += 1
        in_flight = self.in_flight
        key = id(request)  # requests are mappings, not hashable
        items = in_flight.items
        items[key] = request
        caller = None
        try:
            rid = request_id(request)
            request[REQUEST_ID] = rid
            raw = request.raw_path
            if not raw.startswith("/"):  # absolute-form target (RFC 9112 3.2.2)
                raw = request.rel_url.raw_path
            path = raw.partition("?")[0]
            family = self.family_for(path) or self.default
            awaiting_continue = "Expect" in request.headers
            scope = None
            name = ""
            try:
                handler, route, scope = family.resolve(request, path)
                name = handler.__name__
                if self._check is not None:
                    await self._check(request, scope)
                    if self.callers:
                        caller = CALLER.set(caller_of(request, self.ctx))
                if awaiting_continue:
                    await _expect(request)
                    awaiting_continue = False
                if metrics is not None and name in UPLOADING:
                    response = await self._receiving(metrics, handler, request, route)
                else:
                    response = await handler(request, route, self.ctx)
            except Exception as exc:
                response = family.render_error(exc, request)
                if awaiting_continue:
                    # Refused before `100 Continue`: the client may send its body or
                    # not (botocore does not, and reuses the connection), so whatever
                    # comes next on this connection cannot be told from a new
                    # request. Close it.
                    response.force_close()
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = rid
                family.finish(response)
            if self._check is not None and scope is not None:
                self._access.done(request, scope, response.status)
        finally:
            if caller is not None:
                CALLER.reset(caller)
            del items[key]
            if in_flight.stopping:
                in_flight.left()
            if metrics is not None:
                metrics.active -= 1
        if in_flight.stopping:
            response.force_close()
        if metrics is not None:
            sent = response.body_length if response.prepared else (response.content_length or 0)
            # When a streamed answer's headers went (api.common.prepare), asked only
            # where a first-byte series is kept (request.get raises and catches when
            # it is absent).
            headers_at = request.get(HEADERS_AT) if name in FIRST_BYTE_HANDLERS else None
            method = request.method
            metrics.observe(family.name, method if method in _METHODS else "OTHER",
                            response.status, name, time.perf_counter() - started, sent,
                            request.content_length or 0,
                            None if headers_at is None else headers_at - started)
        return response

    async def _receiving(self, metrics: RequestMetrics, handler: Any,
                         request: web.BaseRequest, route: Any) -> web.StreamResponse:
        gauge = metrics.uploads
        gauge.inc()
        try:
            return await handler(request, route, self.ctx)
        finally:
            gauge.dec()


async def _expect(request: web.BaseRequest) -> None:
    """Answer `Expect: 100-continue` once the request is known to be routable and
    allowed, so a client holding back a large body sends it (as aiohttp's router
    would), and a refused one never does."""
    if request.headers["Expect"].lower() != "100-continue":
        raise Unsupported("unsupported Expect header",
                          {"expect": request.headers["Expect"][:100]}, status=417)
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim response is not the response
