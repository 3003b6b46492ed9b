"""Content discovery: /v2/, tags list, catalog, referrers."""

from __future__ import annotations

import json
from urllib.parse import quote

from aiohttp import web

from registry.api.common import services
from registry.api.routes import Route
from registry.core.errors import NameUnknown
from registry.core.grammar import Digest
from registry.core.manifest_format import OCI_INDEX
from registry.core.pagination import page, parse_n


def _json(body: dict, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    # Set the header itself: aiohttp's content_type= would append a charset.
    all_headers = {"Content-Type": content_type, **(headers or {})}
    return web.Response(body=json.dumps(body).encode(), headers=all_headers)


def _paged(request: web.Request, items: list[str], key: str, extra: dict) -> web.Response:
    n = parse_n(request.query.get("n"))
    last = request.query.get("last") or None
    chunk, more = page(items, n, last)
    headers = {}
    if more and chunk:
        headers["Link"] = (f'<{request.path}?n={n}&last={quote(chunk[-1], safe="")}>; '
                           'rel="next"')
    return _json({**extra, key: chunk}, headers)


async def base(request: web.Request, route: Route) -> web.StreamResponse:
    return _json({})


async def tags_list(request: web.Request, route: Route) -> web.StreamResponse:
    reg = services(request)
    tags = await reg.manifests.list_tags(route.name)
    if not tags and not await reg.catalog.exists(route.name):
        raise NameUnknown(detail={"name": route.name})
    return _paged(request, tags, "tags", {"name": route.name})


async def catalog(request: web.Request, route: Route) -> web.StreamResponse:
    repos = await services(request).catalog.repositories()
    return _paged(request, repos, "repositories", {})


async def referrers(request: web.Request, route: Route) -> web.StreamResponse:
    reg = services(request)
    subject = Digest.parse(route.ref)
    artifact_type = request.query.get("artifactType") or None
    found = await reg.referrers.list(route.name, subject, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else None
    return _json(reg.referrers.index(found), headers, content_type=OCI_INDEX)
