"""The classic mirror views of every Spack build cache: `/spack/<cache>/...` in
layouts v3 (spack >= 1.0) and v2 (spack 0.2x), read-only, over plain HTTPS.

The handler parses the route, asks the views it was given (spack.views.ClassicViews:
this registry's caches, or a node cache's view of its upstream's) what the path
is, and renders the answer: a document, a blob, or an S3 object. Every answer
has a strong ETag and honours If-None-Match (304), HEAD and Range; blobs and
objects go out with sendfile.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import AsyncIterator

from aiohttp import web

from registry.api.blobs import send_plan
from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.errors import BlobUnknown, ObjectError, RangeUnsatisfiable
from registry.core.grammar import Digest
from registry.core.ranges import Unsatisfiable, parse_range
from registry.core.serving import BlobPlan, ByteStream
from registry.spack.layout import ROOTS
from registry.spack.views import BlobRef, Document, ObjectRef, missing

# The cache is everything before the first segment after its first that starts a
# layout: the split spack.layout.split_key makes of `<bucket>/<key>` (its unit test).
VIEW = rf"(?P<name>[a-z0-9][a-z0-9._/-]*?)/(?P<path>(?:{'|'.join(ROOTS)})/[^\x00]*)"
OCTETS = "application/octet-stream"


def register(family: PatternFamily) -> None:
    for method in ("GET", "HEAD"):
        family.add(method, VIEW, view, "pull")


async def view(request: web.BaseRequest, route: dict[str, str],
               ctx: Context) -> web.StreamResponse:
    path = route["path"]
    if ctx.spack_views is None:
        raise missing(path)
    answer = await ctx.spack_views.answer(route["name"], path)
    if isinstance(answer, Document):
        return await send_bytes(request, answer.data, answer.content_type)
    if isinstance(answer, BlobRef):
        return await _blob(request, ctx, answer, path)
    return await _object(request, ctx, answer, path)


async def _blob(request: web.BaseRequest, ctx: Context, ref: BlobRef,
                path: str) -> web.StreamResponse:
    headers = {"Content-Type": OCTETS, "Accept-Ranges": "bytes", "ETag": f'"{ref.digest}"'}
    not_modified = request.headers.get("If-None-Match") == headers["ETag"]
    try:
        plan = await ctx.registry.blobs.serve(
            ref.repository, ref.digest, request.headers.get("Range"),
            with_body=request.method == "GET" and not not_modified)
    except BlobUnknown:
        if ref.fallback is None:
            raise missing(path) from None
        return await _object(request, ctx, ref.fallback, path)
    try:
        if not_modified:
            return web.Response(status=304, headers=headers)
        return await send_plan(request, plan, headers)
    finally:
        await plan.close()


async def _object(request: web.BaseRequest, ctx: Context, ref: ObjectRef,
                  path: str) -> web.StreamResponse:
    try:
        plan = await ctx.registry.objects.serve(
            ref.bucket, ref.key, request.headers.get("Range"),
            with_body=request.method == "GET",
            if_none_match=request.headers.get("If-None-Match"))
    except ObjectError as exc:
        if exc.status == 404:
            raise missing(path) from None
        raise
    try:
        headers = {"Content-Type": plan.info.content_type, "Accept-Ranges": "bytes",
                   "ETag": plan.info.quoted_etag}
        if plan.not_modified:
            return web.Response(status=304, headers=headers)
        return await send_plan(request, plan, headers)
    finally:
        await plan.close()


@functools.lru_cache(maxsize=4096)  # the same documents are served again and again
def _etag(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()}"'


async def send_bytes(request: web.BaseRequest, data: bytes,
                     content_type: str) -> web.StreamResponse:
    """A small document with a strong ETag (its sha256), 304, HEAD and Range."""
    etag = _etag(data)
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes", "ETag": etag}
    match = request.headers.get("If-None-Match")
    if match is not None and etag in [m.strip() for m in match.split(",")]:
        return web.Response(status=304, headers=headers)
    if request.method == "GET" and "Range" not in request.headers:
        # The common case (an index manifest, a spec manifest), answered in one write.
        return web.Response(body=data, headers=headers)
    try:
        rng = parse_range(request.headers.get("Range"), len(data))
    except Unsatisfiable:
        raise RangeUnsatisfiable(len(data)) from None
    part = data if rng is None else data[rng.start:rng.end + 1]

    async def one() -> AsyncIterator[bytes]:
        yield part

    plan = BlobPlan(Digest.of(data), len(data), rng,
                    ByteStream(one()) if request.method == "GET" else None)
    return await send_plan(request, plan, headers)
