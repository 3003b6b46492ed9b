"""Helpers shared by the handlers: their context, request bodies, common headers."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from registry.api.access import AllowAll
from registry.arch.needs import RequirementsService
from registry.arch.resolver import Resolver
from registry.config import Config
from registry.core.access import PULL, REQUEST_ID, Caller, Scope
from registry.core.errors import SizeInvalid
from registry.core.service import Registry
from registry.core.types import UploadStatus
from registry.spack.catalog import SpecCatalog
from registry.spack.views import ClassicViews

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


@dataclass(frozen=True, slots=True)
class Context:
    """What every handler is given besides the request and its route."""

    registry: Registry
    config: Config
    # The mounted protocol families: name -> path prefix.
    families: dict[str, str] = field(default_factory=dict)
    # The classic views of Spack build caches (registry.spack.views): this registry's
    # (spack.classic), or a node cache's view of its upstream's (cache.spack_proxy).
    spack_views: ClassicViews | None = None
    # The SQLite index of every spec (registry.spack.catalog); None when off.
    specs: SpecCatalog | None = None
    # What /metrics renders (registry.api.metrics.Metrics); None: process metrics only.
    metrics: Any = None
    # The access step (registry.api.access.AccessControl), set by the dispatcher.
    access: Any = None
    # /readyz: an async callable listing what does not answer (api.health.Readiness).
    ready: Any = None
    # Bytes per namespace (registry.core.usage.Usage); None on a node cache.
    usage: Any = None
    # A garbage collection (api.usage_api.Collector); None on a node cache.
    gc: Any = None
    # The signing keys (registry.trust.keys.KeyStore); None on a node cache.
    keys: Any = None
    # Which build of a tag fits a host (registry.arch.resolver): /api/v1/resolve and
    # the Registry-Host header on the OCI path.
    resolver: Resolver | None = None
    # What manifests need of a host, where blobs are used (registry.core.builds.Builds);
    # None on a node cache.
    builds: Any = None
    # What a manifest needs of a node (registry.arch.needs): /api/v1/requirements.
    requirements: RequirementsService | None = None
    # Each manifest's signature state (registry.trust.feed.SignatureStates); None on
    # a node cache.
    signatures: Any = None
    # The scanner (registry.scan.worker.ScanFeed: its `results` are each manifest's);
    # None on a node cache.
    scans: Any = None
    # Search over the index (registry.core.search.Search); None on a node cache.
    search: Any = None
    # Images composed from Spack build caches (registry.spack.images.Composer); None
    # on a node cache.
    composer: Any = None


def visible(request: web.BaseRequest, ctx: Context, family: str,
            names: list[str]) -> list[str]:
    """The names whose content the caller may pull: listings show nothing else."""
    if ctx.access is None or isinstance(ctx.access, AllowAll):
        return names
    return [n for n in names if ctx.access.allowed(request, Scope(family, n, PULL))]


def caller_of(request: web.BaseRequest, ctx: Context) -> Caller:
    """The caller's rights on other resources, for the decisions core makes on its
    behalf (mounts, links, the tags an S3 push makes): by its identity, as the
    access step judges it."""
    access = ctx.access
    if access is None:
        return Caller(lambda scope: True)  # no access step: auth is off
    return Caller(lambda scope: access.allowed(request, scope))


def upload_headers(status: UploadStatus) -> dict[str, str]:
    """Where an upload stands, as the spec says to tell the client: its URL and the
    inclusive range received (an empty upload reports 0-0, as distribution does)."""
    return {
        "Location": f"/v2/{status.repo}/blobs/uploads/{status.id}",
        "Range": f"0-{max(status.size - 1, 0)}",
        "Docker-Upload-UUID": status.id,
    }


async def prepare(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Send the headers of a response the handler streams itself. Responses returned
    unprepared get these headers from the dispatcher instead."""
    response.headers.setdefault(*API_VERSION_HEADER)
    if REQUEST_ID in request:
        response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    await response.prepare(request)
    request[HEADERS_AT] = time.perf_counter()  # a streamed answer's first byte (metrics)


REQUEST_ID_HEADER = "X-Request-Id"
HEADERS_AT = "registry.headers_at"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ids = itertools.count(1)
_prefix = ""


def _forked() -> None:
    global _prefix
    _prefix = ""


# A forked worker makes its own prefix (told once a fork, not asked once a request:
# os.getpid() is a system call).
os.register_at_fork(after_in_child=_forked)


def request_id(request: web.BaseRequest) -> str:
    """The client's X-Request-Id when it is a sane one, else ours: a random prefix
    per process and a counter, cheaper than a UUID."""
    global _prefix
    given = request.headers.get(REQUEST_ID_HEADER)
    if given is not None and _CLIENT_ID.fullmatch(given):
        return given
    if not _prefix:
        _prefix = secrets.token_hex(4)
    return f"{_prefix}-{next(_ids):x}"


def content_length(request: web.BaseRequest) -> int | None:
    raw = request.headers.get("Content-Length")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise SizeInvalid("invalid Content-Length")
    return int(raw)


def has_body(request: web.BaseRequest) -> bool:
    """True when the request carries body bytes (by length or chunked encoding)."""
    length = content_length(request)
    if length is not None:
        return length > 0
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


async def body_chunks(request: web.BaseRequest) -> AsyncIterator[bytes]:
    """The request body as it arrives, never buffered whole, in the pieces the
    transport delivered: readany() would join everything buffered into one new
    bytes object, a copy of every byte on the event loop (a third of its time
    during a large push); readchunk() hands the buffered pieces over as they are."""
    content = request.content
    while True:
        chunk, _ = await content.readchunk()
        if chunk:
            yield chunk
        elif content.at_eof():  # an empty piece is an HTTP chunk boundary, or the end
            return


async def read_bounded(request: web.BaseRequest, limit: int, too_large: Exception) -> bytes:
    """The whole body of a small request, refusing more than `limit` bytes."""
    length = content_length(request)
    if length is not None and length > limit:
        raise too_large
    buf = bytearray()
    async for chunk in body_chunks(request):
        buf += chunk
        if len(buf) > limit:
            raise too_large
    return bytes(buf)
