"""The small families, routed by a table of path patterns: Spack's classic mirror
views (`/spack/`, plain-text errors) and the registry's own JSON API (`/api/v1/`,
problem JSON); the web UI's (`/ui/`, HTML) is registry/ui/family.py. Each renders
errors its own way; `classify` (api/errors.py) decides what an exception means for
all of them.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from registry.api.common import Context
from registry.api.dispatch import Handler
from registry.api.errors import classify, headers_for
from registry.api.metrics import metrics_page
from registry.core.access import PULL, Scope, action_of
from registry.core.errors import NotFound, RegistryError, Unsupported


class PatternFamily:
    """A family whose routes are regular expressions over the path below its prefix.
    A pattern's named groups are percent-decoded and handed to the handler as a dict;
    a group named `name` is the resource the access step sees."""

    name = ""
    prefix = ""
    root = ""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler, str | None, str]] = []

    def add(self, method: str, pattern: str, handler: Handler,
            action: str | None = None, resource: str = "") -> None:
        """Route `pattern`; the access step sees `action` on the route's `name`
        group, or on `resource` (e.g. "*": everything, for admin views)."""
        self._routes.append((method, re.compile(pattern), handler, action, resource))

    def resolve(self, request: web.BaseRequest,
                path: str) -> tuple[Handler, dict[str, str], Scope]:
        sub = path[len(self.prefix):] if path.startswith(self.prefix) else ""
        known_path = False
        for method, pattern, handler, action, resource in self._routes:
            m = pattern.fullmatch(sub)
            if m is None:
                continue
            known_path = True
            if method != request.method:
                continue
            try:
                groups = {k: unquote(v, errors="strict") for k, v in m.groupdict().items()
                          if v is not None}
            except UnicodeDecodeError:  # escapes that are not UTF-8 name nothing here
                raise NotFound(detail={"path": path[:200]}) from None
            return handler, groups, Scope(self.name, groups.get("name", resource),
                                          action or action_of(method))
        if known_path:
            raise Unsupported(f"{request.method} is not supported here",
                              {"method": request.method})
        raise NotFound(detail={"path": path[:200]})

    def render_error(self, exc: Exception, request: web.BaseRequest) -> web.StreamResponse:
        err = classify(exc, request)
        return self.error_body(err, request, headers_for(err))

    def error_body(self, err: RegistryError, request: web.BaseRequest,
                   headers: dict[str, str]) -> web.StreamResponse:
        raise NotImplementedError

    def finish(self, response: web.StreamResponse) -> None:
        return None


class PlainTextFamily(PatternFamily):
    """A pattern family whose errors are one line of plain text."""

    def error_body(self, err: RegistryError, request: web.BaseRequest,
                   headers: dict[str, str]) -> web.StreamResponse:
        return web.Response(status=err.status, text=f"{err.message}\n", headers=headers)


class SpackFamily(PlainTextFamily):
    """Spack's classic build-cache layouts (v2, v3) over plain HTTPS. Spack reads
    these as files: errors are plain text, and caching is by ETag and 304."""

    name = "spack"
    prefix = "/spack/"
    root = "/spack"


class ApiFamily(PatternFamily):
    """The registry's own JSON API; errors are RFC 9457 problem documents."""

    name = "api"
    prefix = "/api/v1/"
    root = "/api/v1"

    def __init__(self) -> None:
        super().__init__()
        self.add("GET", r"", api_root, PULL)

    def error_body(self, err: RegistryError, request: web.BaseRequest,
                   headers: dict[str, str]) -> web.StreamResponse:
        problem: dict[str, Any] = {"type": "about:blank", "title": err.code,
                                   "status": err.status, "detail": err.message}
        if err.detail:
            problem["errors"] = err.detail
        headers["Content-Type"] = "application/problem+json"
        return web.Response(status=err.status, body=json.dumps(problem).encode(),
                            headers=headers)


class MetricsFamily(PlainTextFamily):
    """Prometheus metrics at `/metrics` (text exposition); errors are plain text."""

    name = "metrics"
    prefix = "/metrics/"
    root = "/metrics"

    def __init__(self) -> None:
        super().__init__()
        self.add("GET", r"", metrics_page, PULL)


async def api_root(request: web.BaseRequest, route: dict[str, str],
                   ctx: Context) -> web.StreamResponse:
    """What this registry serves: its protocol families and their mount points."""
    body = {"service": "registry", "families": ctx.families}
    return web.Response(body=json.dumps(body).encode(),
                        headers={"Content-Type": "application/json"})
