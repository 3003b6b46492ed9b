"""The home page: a search box, what was pushed lately, and the repositories the
caller may pull."""

from __future__ import annotations

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.families import PatternFamily
from registry.core.access import BROWSE
from registry.ui.render import page

MAX_LISTED = 1000


def register(family: PatternFamily) -> None:
    family.add("GET", r"", home, BROWSE)


async def home(request: web.BaseRequest, route: dict[str, str],
               ctx: Context) -> web.StreamResponse:
    repos = visible(request, ctx, "oci", await ctx.registry.catalog.repositories())
    return page(request, ctx, "home.html", repositories=repos[:MAX_LISTED],
                total=len(repos))
