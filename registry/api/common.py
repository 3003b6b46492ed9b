"""Helpers shared by the handlers: app keys, request bodies, common headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from registry.config import Config
from registry.core.errors import SizeInvalid
from registry.core.service import Registry

REGISTRY = web.AppKey("registry", Registry)
CONFIG = web.AppKey("config", Config)


def services(request: web.Request) -> Registry:
    return request.app[REGISTRY]


def content_length(request: web.Request) -> int | None:
    raw = request.headers.get("Content-Length")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise SizeInvalid("invalid Content-Length")
    return int(raw)


def has_body(request: web.Request) -> bool:
    """True when the request carries body bytes (by length or chunked encoding)."""
    length = content_length(request)
    if length is not None:
        return length > 0
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body as it arrives, never buffered whole."""
    content = request.content
    while True:
        chunk = await content.readany()
        if not chunk:
            return
        yield chunk


async def read_bounded(request: web.Request, limit: int, too_large: Exception) -> bytes:
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
