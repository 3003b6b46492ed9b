"""`GET /api/v1/usage[?namespace=NS]`: bytes per namespace (core.usage), for
whoever may administer everything (with auth on: `admin` on `*`)."""

from __future__ import annotations

import json

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.access import ADMIN
from registry.core.errors import NotFound


def register(family: PatternFamily) -> None:
    family.add("GET", r"usage/?", usage, ADMIN, resource="*")


async def usage(request: web.BaseRequest, route: dict[str, str],
                ctx: Context) -> web.StreamResponse:
    if ctx.usage is None:
        raise NotFound("no usage here (a node cache keeps no index of its upstream)")
    report = await ctx.usage.report(request.query.get("namespace") or None)
    return web.Response(body=json.dumps(report).encode(),
                        headers={"Content-Type": "application/json"})
