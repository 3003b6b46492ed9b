"""`GET /api/v1/blobs/<digest>`: the repositories, manifests (with their tags) and
platforms (with their archspec targets) that use a blob, within the repositories the
caller may pull, and per platform the bytes shared with other platforms
(core/builds.py; docs/architecture-aware.md, "Where a blob is used")."""

from __future__ import annotations

import json

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.families import PatternFamily
from registry.core.access import PULL
from registry.core.builds import report_json
from registry.core.errors import BlobUnknown, NotFound
from registry.core.grammar import Digest


def register(family: PatternFamily) -> None:
    family.add("GET", r"blobs/(?P<digest>[^/]*)", blob_uses, PULL)


async def blob_uses(request: web.BaseRequest, route: dict[str, str],
                    ctx: Context) -> web.StreamResponse:
    digest = Digest.parse(route["digest"])  # 400 DIGEST_INVALID
    if ctx.builds is None:
        raise NotFound("no index of blobs here (a node cache keeps none of its upstream)")
    report = await ctx.builds.blob(
        digest, lambda repo: bool(visible(request, ctx, "oci", [repo])))
    if report is None:  # unknown, or only where the caller may not look: the same answer
        raise BlobUnknown(detail={"digest": str(digest)})
    return web.Response(body=json.dumps(report_json(report)).encode(),
                        headers={"Content-Type": "application/json"})
