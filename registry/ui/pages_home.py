"""The home page: a search box, what was pushed lately, the space used, and the
repositories the caller may pull.

Everything is narrowed to the caller: recent pushes only in repositories they may
pull (`Search.recent`); storage usage per top namespace only where they may pull every
repository of it (a namespace's bytes would tell of the repositories hidden in it),
and the store's total, logical bytes and every namespace only to whoever may
administer everything (what `GET /api/v1/usage` answers)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.families import PatternFamily
from registry.api.search_api import may_pull
from registry.core.access import ADMIN, BROWSE, Scope
from registry.ui.render import page

MAX_LISTED = 1000
RECENT = 15
# The usage report sums every blob reference of the store: anyone may open the home
# page, so one report serves every view for this long (figures up to 30 s old).
USAGE_TTL_S = 30.0
_reports: dict[int, tuple[float, dict[str, Any]]] = {}


def register(family: PatternFamily) -> None:
    family.add("GET", r"", home, BROWSE)


def namespace_of(repo: str) -> str:
    return repo.split("/", 1)[0]


def is_admin(request: web.BaseRequest, ctx: Context) -> bool:
    """Whether the caller may administer everything (auth off: anyone)."""
    return ctx.access is None or bool(ctx.access.allowed(request, Scope("api", "*", ADMIN)))


async def _report(ctx: Context) -> dict[str, Any]:
    key, now = id(ctx.usage), time.monotonic()
    known = _reports.get(key)
    if known is not None and now - known[0] < USAGE_TTL_S:
        return known[1]
    report: dict[str, Any] = await ctx.usage.report()
    _reports.clear()  # one registry per process (tests start more, one at a time)
    _reports[key] = (now, report)
    return report


async def usage_view(request: web.BaseRequest, ctx: Context, every: list[str],
                     shown: list[str]) -> dict[str, Any] | None:
    """The usage box: {"admin", "total", "namespaces"}; None without an index."""
    if ctx.usage is None:
        return None
    report = await _report(ctx)
    rows = report["namespaces"]
    if is_admin(request, ctx):
        return {"admin": True, "total": report["total"]["unique"],
                "logical": report["total"]["logical"], "namespaces": rows}
    hidden = {namespace_of(r) for r in set(every) - set(shown)}
    rows = [r for r in rows if r["namespace"] not in hidden
            and r["namespace"] in {namespace_of(s) for s in shown}]
    return {"admin": False, "total": sum(r["unique"] for r in rows), "logical": None,
            "namespaces": rows}


async def home(request: web.BaseRequest, route: dict[str, str],
               ctx: Context) -> web.StreamResponse:
    every = await ctx.registry.catalog.repositories()
    repos = visible(request, ctx, "oci", every)
    recent = [] if ctx.search is None else await ctx.search.recent(
        RECENT, may_pull(request, ctx))
    return page(request, ctx, "home.html", repositories=repos[:MAX_LISTED],
                total=len(repos), recent=recent,
                usage=await usage_view(request, ctx, every, repos))
