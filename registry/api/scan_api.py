"""`GET /api/v1/scan/<name>@<digest>`: what the scan of a manifest found (registry/
scan): packages (ecosystem, name, version, source package, purl, path, layer),
findings (private keys, setuid and setgid files), the distribution, the layers
read, errors, scanned_at. The caller must be able to pull `<name>`; an unknown
manifest is a 404 MANIFEST_UNKNOWN, one not scanned yet a 404 with
`"status": "pending"`. `vulnerabilities` and `max_severity`: the packages matched
against the imported OSV advisories (registry/scan/vulns.py), re-matched when the
advisories changed since."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.errors import ManifestUnknown, NotFound
from registry.core.grammar import Digest


def register(family: PatternFamily) -> None:
    family.add("GET", r"scan/(?P<name>[^@\x00]+)@(?P<digest>[^/@\x00]+)", scan_result, "pull")


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body, separators=(",", ":")).encode(),
                        headers={"Content-Type": "application/json"})


async def scan_result(request: web.BaseRequest, route: dict[str, str],
                      ctx: Context) -> web.StreamResponse:
    feed = ctx.scans
    if feed is None:  # a node cache scans nothing of its upstream's
        raise NotFound("scan results are kept by the registry, not a node cache")
    repo, digest = route["name"], Digest.parse(route["digest"])
    if not await ctx.registry.manifests.exists(repo, digest):
        raise ManifestUnknown(detail={"name": repo[:200], "digest": str(digest)})
    doc = await feed.result(digest)
    if doc is None:
        return _json({"name": repo, "digest": str(digest), "status": "pending"}, 404)
    return _json({**doc, "name": repo, "status": "scanned"})
