"""Upload endpoints: start (with mount or single-request digest), PATCH, PUT, status, cancel."""

from __future__ import annotations

from aiohttp import web

from registry.api.common import (
    Context,
    body_chunks,
    caller_of,
    content_length,
    has_body,
    upload_headers,
)
from registry.api.routes import Route
from registry.core.errors import DigestInvalid
from registry.core.grammar import Digest, validate_name
from registry.core.ranges import parse_content_range


def _created(repo: str, digest: Digest) -> web.Response:
    return web.Response(status=201, headers={
        "Location": f"/v2/{repo}/blobs/{digest}",
        "Docker-Content-Digest": str(digest),
    })


def _required_digest(request: web.BaseRequest) -> Digest:
    raw = request.query.get("digest")
    if not raw:
        raise DigestInvalid("the digest query parameter is required")
    return Digest.parse(raw)


async def start_upload(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    repo = route.name
    mount = request.query.get("mount")
    if mount:
        digest = Digest.parse(mount)
        source = request.query.get("from")
        if source is not None:
            validate_name(source)
        # A mount links bytes the client did not send: core decides by the mount rule
        # with the caller's rights; refused, it is 202 and a normal upload, as the
        # spec allows.
        if await reg.uploads.mount(repo, digest, source, caller_of(request, ctx)):
            return _created(repo, digest)
    elif "digest" in request.query:
        digest = _required_digest(request)
        chunks = body_chunks(request) if has_body(request) else _empty()
        await reg.uploads.upload_whole(repo, digest, chunks, content_length(request))
        return _created(repo, digest)
    status = await reg.uploads.start(repo, ctx.access.owner(request))
    return web.Response(status=202, headers=upload_headers(status))


async def _empty():
    return
    yield  # pragma: no cover - makes this an async generator


def _content_range(request: web.BaseRequest) -> tuple[int, int] | None:
    raw = request.headers.get("Content-Range")
    return parse_content_range(raw) if raw else None


async def patch_upload(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    status = await reg.uploads.append(route.name, route.ref, body_chunks(request),
                                      _content_range(request), content_length(request),
                                      ctx.access.owner(request))
    return web.Response(status=202, headers=upload_headers(status))


async def put_upload(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    digest = _required_digest(request)
    chunks = body_chunks(request) if has_body(request) else None
    await reg.uploads.finish(route.name, route.ref, digest, chunks,
                             _content_range(request) if chunks else None,
                             content_length(request) if chunks else None,
                             ctx.access.owner(request))
    return _created(route.name, digest)


async def get_upload(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    status = await ctx.registry.uploads.status(route.name, route.ref,
                                               ctx.access.owner(request))
    return web.Response(status=204, headers=upload_headers(status))


async def cancel_upload(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    await ctx.registry.uploads.cancel(route.name, route.ref, ctx.access.owner(request))
    return web.Response(status=204)
