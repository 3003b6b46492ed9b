"""Host-aware answers (registry.arch.resolver), on both paths that ask for them:

- `GET /api/v1/resolve/<name>:<tag>?os=&arch=&target=&cuda=&rocm=&mpi=&features=` (or
  `<name>@<digest>`): JSON `{"digest", "index", "candidates": [...]}`; nothing fits: a
  404 problem document whose `errors` hold the same candidates; a bad query: 400.
- `GET`/`HEAD /v2/<name>/manifests/<tag>` with a `Registry-Host` header whose value is
  that query string, for a tag naming an index: the best child manifest, its own media
  type, body and `Docker-Content-Digest`; nothing fits: 404 MANIFEST_UNKNOWN with the
  reasons; a malformed header: 400 UNSUPPORTED (the spec's code for "an invalid set of
  parameters"; MANIFEST_INVALID is about a pushed document).

Access is the dispatcher's one step: the route's repository with `pull`, before any
lookup, so a caller who may not pull a repository learns nothing of it.
"""

from __future__ import annotations

import json

from aiohttp import web
from multidict import istr

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.arch.host import MAX_QUERY, Host, HostError, parse_host
from registry.arch.request import client_host
from registry.arch.resolver import Resolution, Resolver
from registry.core.access import PULL
from registry.core.errors import ManifestUnknown, NotFound, RegistryError
from registry.core.grammar import Digest, is_digest_like, validate_name
from registry.core.manifest_format import INDEX_TYPES
from registry.core.types import StoredManifest

# An istr, as aiohttp's own header names: the hot path's look-up skips case folding.
HOST_HEADER = istr("Registry-Host")
# Says which index the answer was chosen from (the child's own digest is in
# Docker-Content-Digest, as the client checks it).
INDEX_HEADER = "Registry-Host-Index"


class HostInvalid(RegistryError):
    """A host description (query string or Registry-Host header) that does not parse."""

    code, status, message = "UNSUPPORTED", 400, "invalid host description"


def register(family: PatternFamily) -> None:
    family.add("GET", r"resolve/(?P<name>[^:@]+)(?::(?P<tag>[^:@/]+)|@(?P<digest>[^@/]+))",
               resolve, PULL)


def host_of(text: str, where: str) -> Host:
    """The Host a query string describes; HostInvalid (400) when it is not one."""
    try:
        return parse_host(text)
    except HostError as exc:
        raise HostInvalid(f"{where}: {exc}", {where: text[:MAX_QUERY]}) from None


def _resolver(ctx: Context) -> Resolver:
    if ctx.resolver is None:
        raise NotFound("no host-aware resolution here")
    return ctx.resolver


def nothing_fits(resolution: Resolution, host: str) -> ManifestUnknown:
    """404 for a host no build fits: the candidates and why each does not fit."""
    return ManifestUnknown("no manifest of this index fits the host",
                           {"index": resolution.digest, "host": host[:MAX_QUERY],
                            "candidates": [c.to_json() for c in resolution.candidates]})


async def resolve(request: web.BaseRequest, route: dict[str, str],
                  ctx: Context) -> web.StreamResponse:
    name = validate_name(route["name"])
    if "digest" in route:
        reference = str(Digest.parse(route["digest"]))
    else:
        reference = route["tag"]
    query = request.query_string
    host = host_of(query, "query")
    token = client_host.set(host)
    try:
        resolution = await _resolver(ctx).resolve(name, reference, host)
    finally:
        client_host.reset(token)
    if resolution.chosen is None:
        raise nothing_fits(resolution, query)
    return web.Response(body=json.dumps(resolution.to_json(), separators=(",", ":")).encode(),
                        headers={"Content-Type": "application/json"})


async def manifest_for_host(ctx: Context, repo: str, reference: str, header: str,
                            head: bool) -> tuple[StoredManifest, dict[str, str]]:
    """The OCI path with a Registry-Host header: for a tag naming an index, the best
    child for the host and the headers to add; anything else as without the header (a
    digest names its bytes: the client checks them). Raises HostInvalid, or
    ManifestUnknown when nothing fits."""
    host = host_of(header, HOST_HEADER)
    # The client named its host: a decorator with a host of its own (a host-aware node
    # cache) leaves the choice to this one (arch.request).
    token = client_host.set(host)
    try:
        return await _for_host(ctx, repo, reference, host, header, head)
    finally:
        client_host.reset(token)


async def _for_host(ctx: Context, repo: str, reference: str, host: Host, header: str,
                    head: bool) -> tuple[StoredManifest, dict[str, str]]:
    manifests = ctx.registry.manifests
    stored = await manifests.get(repo, reference, with_body=False)  # no pull counted yet
    if stored.media_type not in INDEX_TYPES or is_digest_like(reference):
        return await manifests.get(repo, reference, with_body=not head), {}
    resolution = await _resolver(ctx).resolve_stored(repo, stored, host)
    chosen = resolution.chosen
    if chosen is None:
        raise nothing_fits(resolution, header)
    child = await manifests.get(repo, chosen.digest, with_body=not head)
    # Caches in front must not give this answer to a request with another host.
    return child, {"Vary": str(HOST_HEADER), INDEX_HEADER: resolution.digest}
