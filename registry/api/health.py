"""`/healthz` (the process answers) and `/readyz` (its store and index answer),
outside `/v2/` and outside auth, for load balancers, systemd and Kubernetes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PlainTextFamily
from registry.core.access import PULL

# What app.py gives the context: the problems found, none when ready.
Readiness = Callable[[], Awaitable[list[str]]]


class _Probe(PlainTextFamily):
    """A probe at one path, GET and HEAD, answering in plain text on errors."""

    def __init__(self) -> None:
        super().__init__()
        for method in ("GET", "HEAD"):
            self.add(method, r"", self.answer, PULL)

    async def answer(self, request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
        raise NotImplementedError


class HealthFamily(_Probe):
    """`/healthz`: 200 while the process serves requests at all."""

    name = "healthz"
    prefix = "/healthz/"
    root = "/healthz"

    async def answer(self, request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
        return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})


class ReadyFamily(_Probe):
    """`/readyz`: 200 when the store and the index answer, else 503 saying which not."""

    name = "readyz"
    prefix = "/readyz/"
    root = "/readyz"

    async def answer(self, request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
        problems = await ctx.ready() if ctx.ready is not None else []
        body = json.dumps({"ready": not problems, "problems": problems}).encode()
        return web.Response(status=503 if problems else 200, body=body, headers={
            "Content-Type": "application/json", "Cache-Control": "no-store"})
