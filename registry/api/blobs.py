"""Blob endpoints: GET/HEAD with Range, DELETE."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from registry.api.common import Context, prepare
from registry.api.routes import Route
from registry.api.sendfile import send_file
from registry.core.errors import BlobUnknown, RangeUnsatisfiable
from registry.core.grammar import Digest
from registry.core.ranges import Unsatisfiable, parse_range
from registry.core.service import Registry


def _headers(digest: Digest) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }


async def get_blob(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    digest = Digest.parse(route.ref)
    if not await reg.blobs.linked(route.name, digest):
        raise BlobUnknown(detail={"digest": str(digest)})
    opened = await reg.blobs.open_local(digest) if request.method == "GET" else None
    fd = opened[0] if opened else None
    try:
        size = opened[1] if opened else await reg.blobs.size(digest)
        if size is None:
            raise BlobUnknown(detail={"digest": str(digest)})
        response, fd_taken = await _respond(request, reg, digest, size, fd)
        if fd_taken:
            fd = None  # send_file closes it
        return response
    finally:
        if fd is not None:
            await asyncio.to_thread(os.close, fd)


async def _respond(request: web.BaseRequest, reg: Registry, digest: Digest, size: int,
                   fd: int | None) -> tuple[web.StreamResponse, bool]:
    """The response, and whether send_file took ownership of `fd`."""
    headers = _headers(digest)
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers), False
    try:
        rng = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        raise RangeUnsatisfiable(detail={"size": size},
                                  headers={"Content-Range": f"bytes */{size}"}) from None
    status, offset, count = 200, 0, size
    if rng is not None:
        status, offset, count = 206, rng.start, rng.length
        headers["Content-Range"] = f"bytes {rng.start}-{rng.end}/{size}"
    if request.method == "GET" and rng is None and fd is None:
        url = await reg.blobs.redirect_url(digest)
        if url:
            return web.Response(status=307, headers={"Location": url,
                                                     "Docker-Content-Digest": str(digest)}), False
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    if fd is not None:
        return await send_file(request, response, fd, offset, count), True
    await prepare(request, response)
    if request.method == "GET":
        async for chunk in reg.blobs.reader(digest, offset, count):
            await response.write(chunk)
    await response.write_eof()
    return response, False


async def delete_blob(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    reg = ctx.registry
    digest = Digest.parse(route.ref)
    await reg.blobs.unlink(route.name, digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
