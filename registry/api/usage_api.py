"""Space: `GET /api/v1/usage[?namespace=NS]` (bytes per namespace, core.usage) and
`POST /api/v1/gc[?dry_run=1&grace=SECONDS]` (a garbage collection, core.gc), for
whoever may administer everything (with auth on: `admin` on `*`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.access import ADMIN
from registry.core.errors import NotFound, RegistryError
from registry.core.gc import GcBusy

# What app.py gives the context: run a collection (dry_run, grace or None) -> report.
Collector = Callable[[bool, float | None], Awaitable[dict]]


def register(family: PatternFamily) -> None:
    family.add("GET", r"usage/?", usage, ADMIN, resource="*")
    family.add("POST", r"gc/?", gc, ADMIN, resource="*")


async def gc(request: web.BaseRequest, route: dict[str, str],
             ctx: Context) -> web.StreamResponse:
    if ctx.gc is None:
        raise NotFound("no garbage collection here (a node cache evicts instead)")
    dry_run = request.query.get("dry_run", "") in ("1", "true", "yes")
    raw = request.query.get("grace")
    if raw is not None and (not raw.isdigit() or int(raw) < 60):
        raise RegistryError("grace: expected whole seconds, at least 60", {"grace": raw[:40]},
                            status=400, code="UNSUPPORTED")
    try:
        report = await ctx.gc(dry_run, float(raw) if raw is not None else None)
    except GcBusy as exc:
        raise RegistryError(str(exc), status=409, code="UNSUPPORTED") from None
    return web.Response(body=json.dumps(report).encode(),
                        headers={"Content-Type": "application/json"})


async def usage(request: web.BaseRequest, route: dict[str, str],
                ctx: Context) -> web.StreamResponse:
    if ctx.usage is None:
        raise NotFound("no usage here (a node cache keeps no index of its upstream)")
    report = await ctx.usage.report(request.query.get("namespace") or None)
    return web.Response(body=json.dumps(report).encode(),
                        headers={"Content-Type": "application/json"})
