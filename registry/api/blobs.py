"""Blob endpoints: GET/HEAD render the serving plan core decides; DELETE unlinks."""

from __future__ import annotations

from aiohttp import web

from registry.api.common import Context, prepare
from registry.api.routes import Route
from registry.api.sendfile import send_file
from registry.core.grammar import Digest
from registry.core.serving import BlobPlan, ByteStream, LocalFile, Redirect, Sendable


def _headers(digest: Digest) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }


async def get_blob(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    digest = Digest.parse(route.ref)
    headers = _headers(digest)
    # A client that has the blob gets 304 without a file being opened (blobs are
    # immutable: the ETag is the digest), once the repository is known to hold it.
    not_modified = request.headers.get("If-None-Match") == headers["ETag"]
    plan = await ctx.registry.blobs.serve(route.name, digest, request.headers.get("Range"),
                                          with_body=request.method == "GET" and not not_modified)
    try:
        return await render(request, plan, headers, not_modified)
    finally:
        await plan.close()


async def render(request: web.BaseRequest, plan: BlobPlan, headers: dict[str, str],
                 not_modified: bool = False) -> web.StreamResponse:
    """The response for a blob's serving plan."""
    if not_modified:
        return web.Response(status=304, headers=headers)
    if isinstance(plan.body, Redirect):
        return web.Response(status=307, headers={
            "Location": plan.body.url,
            "Docker-Content-Digest": headers["Docker-Content-Digest"]})
    return await send_plan(request, plan, headers)


async def send_plan(request: web.BaseRequest, plan: Sendable,
                    headers: dict[str, str]) -> web.StreamResponse:
    """Send the bytes a plan says (a blob's, an S3 object's): 200 or 206 with its
    Content-Range, from a local file with sendfile (following it while it grows)
    or from a stream, or headers only when the plan has no body (HEAD)."""
    status = 200
    if plan.range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {plan.range.start}-{plan.range.end}/{plan.total}"
    body = plan.body
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = plan.length
    if isinstance(body, LocalFile):
        progress = body.progress
        fd = plan.take_fd()
        assert fd is not None
        return await send_file(request, response, fd, plan.offset, plan.length, progress)
    await prepare(request, response)
    if isinstance(body, ByteStream):
        try:
            if request.method == "GET":
                async for chunk in body.chunks:
                    await response.write(chunk)
        finally:
            close = getattr(body.chunks, "aclose", None)
            if close is not None:  # a client gone mid-stream: release the store's reader now
                await close()
    await response.write_eof()
    return response


async def delete_blob(request: web.BaseRequest, route: Route, ctx: Context) -> web.StreamResponse:
    digest = Digest.parse(route.ref)
    await ctx.registry.blobs.unlink(route.name, digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest)})
