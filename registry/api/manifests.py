"""Manifest endpoints: GET/HEAD by tag or digest, PUT, DELETE."""

from __future__ import annotations

from aiohttp import hdrs, web

from registry.api.common import Context, prepare, read_bounded
from registry.api.resolve_api import HOST_HEADER, manifest_for_host
from registry.api.routes import Route
from registry.core.errors import TooLarge


async def get_manifest(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    head = request.method == "HEAD"
    # The request's headers fetched once, looked up by istr names (no case folding):
    # what the Registry-Host look-up costs the hot path, the If-None-Match one saves.
    asked = request.headers
    host = asked.get(HOST_HEADER)
    if host is None:
        stored = await reg.manifests.get(route.name, route.ref, with_body=not head)
    else:
        stored, extra = await manifest_for_host(ctx, route.name, route.ref, host, head)
    headers = {
        "Docker-Content-Digest": str(stored.digest),
        "Content-Type": stored.media_type,
        "ETag": f'"{stored.digest}"',
    }
    if host is not None:
        headers.update(extra)
    if stored.stale:  # not revalidated where it comes from (RFC 7234's warn-code 110)
        headers["Warning"] = '110 - "Response is Stale"'
    if asked.get(hdrs.IF_NONE_MATCH) == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    if head:
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_length = stored.size
        await prepare(request, resp)
        await resp.write_eof()
        return resp
    return web.Response(status=200, body=stored.data, headers=headers)


async def put_manifest(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    limit = ctx.config.limits.manifest_max_bytes
    too_large = TooLarge(f"manifest larger than {limit} bytes", {"limit": limit})
    data = await read_bounded(request, limit, too_large)
    digest, manifest = await reg.manifests.put(route.name, route.ref, data,
                                               request.headers.get("Content-Type"))
    headers = {
        "Location": f"/v2/{route.name}/manifests/{digest}",
        "Docker-Content-Digest": str(digest),
    }
    if manifest.subject is not None:
        headers["OCI-Subject"] = str(manifest.subject.digest)
    return web.Response(status=201, headers=headers)


async def delete_manifest(request: web.BaseRequest, route: Route,
                          ctx: Context) -> web.StreamResponse:
    await ctx.registry.manifests.delete(route.name, route.ref)
    return web.Response(status=202)
