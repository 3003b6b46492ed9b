"""`GET /api/v1/signatures/<name>@<digest>`: a manifest's signatures as the index holds
them (registry/trust/feed.py), one entry per signature: format, identity, the trusted
key or Notation root that vouches for it, valid, and if not the reason (unknown key,
bad signature, wrong digest, expired, untrusted chain, malformed) and detail; a
manifest without signatures has `signed: false` and no entries. `?refresh=1` verifies
now. The caller must be able to pull `<name>`; an unknown manifest is a 404."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.errors import ManifestUnknown, NotFound
from registry.core.grammar import Digest
from registry.trust.checks import UNSIGNED


def register(family: PatternFamily) -> None:
    family.add("GET", r"signatures/(?P<name>[^@\x00]+)@(?P<digest>[^/@\x00]+)", signatures,
               "pull")


async def signatures(request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
    states = ctx.signatures
    if states is None:  # a node cache keeps no signature state of its upstream's
        raise NotFound("signature state is kept by the registry, not a node cache")
    repo, digest = route["name"], Digest.parse(route["digest"])
    if not await ctx.registry.manifests.exists(repo, digest):
        raise ManifestUnknown(detail={"name": repo[:200], "digest": str(digest)})
    refresh = request.query.get("refresh", "") in ("1", "true")
    rows = await states.state(ctx.registry, repo, digest, refresh=refresh)
    shown: list[dict[str, Any]] = [
        {"format": r.format, "signature": r.signature, "position": r.position,
         "identity": r.identity, "key": r.key, "valid": r.valid, "reason": r.reason,
         "detail": r.detail} for r in rows if r.reason != UNSIGNED]
    body = {"name": repo, "digest": str(digest), "signed": bool(shown),
            "valid": any(s["valid"] for s in shown), "signatures": shown,
            "checked_at": max((r.checked_at for r in rows), default=0.0)}
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(),
                        headers={"Content-Type": "application/json"})
