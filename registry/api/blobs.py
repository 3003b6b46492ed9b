"""Blob endpoints: GET/HEAD with Range, DELETE."""

from __future__ import annotations

import asyncio

from aiohttp import web

from registry.api.common import services
from registry.api.routes import Route
from registry.api.sendfile import send_file
from registry.core.errors import BlobUnknown, RegistryError
from registry.core.grammar import Digest
from registry.core.ranges import Unsatisfiable, parse_range


class RangeNotSatisfiable(RegistryError):
    code, status, message = "SIZE_INVALID", 416, "requested range not satisfiable"


def _headers(digest: Digest) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }


async def get_blob(request: web.Request, route: Route) -> web.StreamResponse:
    reg = services(request)
    digest = Digest.parse(route.ref)
    size = await reg.blobs.stat_in(route.name, digest)
    headers = _headers(digest)
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    try:
        rng = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        raise RangeNotSatisfiable(detail={"size": size},
                                  headers={"Content-Range": f"bytes */{size}"}) from None
    status, offset, count = 200, 0, size
    if rng is not None:
        status, offset, count = 206, rng.start, rng.length
        headers["Content-Range"] = f"bytes {rng.start}-{rng.end}/{size}"
    if request.method == "GET" and rng is None:
        url = await reg.blobs.redirect_url(digest)
        if url:
            return web.Response(status=307, headers={"Location": url,
                                                     "Docker-Content-Digest": str(digest)})
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    local = reg.blobs.local_path(digest)
    if local is not None:
        loop = asyncio.get_running_loop()
        try:
            fh = await loop.run_in_executor(None, open, local, "rb")
        except FileNotFoundError:
            raise BlobUnknown(detail={"digest": str(digest)}) from None
        try:
            return await send_file(request, response, fh, offset, count)
        finally:
            await loop.run_in_executor(None, fh.close)
    await response.prepare(request)
    if request.method == "GET":
        async for chunk in reg.blobs.reader(digest, offset, count):
            await response.write(chunk)
    await response.write_eof()
    return response


async def delete_blob(request: web.Request, route: Route) -> web.StreamResponse:
    reg = services(request)
    digest = Digest.parse(route.ref)
    await reg.blobs.unlink(route.name, digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
