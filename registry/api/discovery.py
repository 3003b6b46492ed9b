"""Content discovery: /v2/, tags list, catalog, referrers."""

from __future__ import annotations

import json

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.routes import Route
from registry.core.errors import NameUnknown
from registry.core.grammar import Digest
from registry.core.manifest_format import OCI_INDEX
from registry.core.pagination import RenderedPage, parse_n, render_page


def _json(body: dict, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    # Set the header itself: aiohttp's content_type= would append a charset.
    all_headers = {"Content-Type": content_type, **(headers or {})}
    return web.Response(body=json.dumps(body).encode(), headers=all_headers)


def _page_args(request: web.BaseRequest) -> tuple[int | None, str | None]:
    return parse_n(request.query.get("n")), request.query.get("last") or None


def _page_response(rendered: RenderedPage) -> web.Response:
    headers = {"Content-Type": "application/json"}
    if rendered.link is not None:
        headers["Link"] = rendered.link
    return web.Response(body=rendered.body, headers=headers)


async def base(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    return _json({})


async def tags_list(request: web.BaseRequest, route: Route,
                    ctx: Context) -> web.StreamResponse:
    reg = ctx.registry

    async def build(tags: list[str]) -> RenderedPage:
        n, last = _page_args(request)
        # The path is spelled from the name (not the request), so a cached page is
        # the same whatever percent-encoding the client used.
        path = f"/v2/{route.name}/tags/list"
        return await render_page(tags, n, last, path, "tags", {"name": route.name})

    # Keyed by the raw query string (still percent-encoded: decoded, `last=a%26n%3D5`
    # and `last=a&n=5` would collide), so a repeated page skips even the query
    # parsing. Only a valid query produces an entry: build raises otherwise.
    query = request.raw_path.partition("?")[2]
    rendered = await reg.tags.view(route.name, ("page", query), build)
    if rendered.total == 0 and not await reg.catalog.exists(route.name):
        raise NameUnknown(detail={"name": route.name})
    return _page_response(rendered)


async def catalog(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    n, last = _page_args(request)
    repos = visible(request, ctx, "oci", await ctx.registry.catalog.repositories())
    return _page_response(await render_page(repos, n, last, request.path, "repositories", {}))


async def referrers(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    subject = Digest.parse(route.ref)
    artifact_type = request.query.get("artifactType") or None
    found = await reg.referrers.list(route.name, subject, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else None
    return _json(reg.referrers.index(found), headers, content_type=OCI_INDEX)
