"""The dashboard's own stylesheet and script, read once at import and served from
memory under /ui/static/NAME: a fixed set of names, so no path from a request ever
reaches a file."""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web

from registry.api.common import Context
from registry.core.errors import NotFound

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".png": "image/png", ".svg": "image/svg+xml"}


def _load() -> dict[str, tuple[bytes, str, str]]:
    out = {}
    for item in (resources.files("registry.ui") / "static").iterdir():
        suffix = item.name[item.name.rfind("."):]
        if suffix in _TYPES:
            data = item.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
            out[item.name] = (data, _TYPES[suffix], etag)
    return out


FILES = _load()


async def static_file(request: web.BaseRequest, route: dict[str, str],
                      ctx: Context) -> web.StreamResponse:
    found = FILES.get(route.get("file", ""))
    if found is None:
        raise NotFound("no such file")
    data, kind, etag = found
    headers = {"Content-Type": kind, "ETag": etag, "Cache-Control": "max-age=3600",
               "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers=headers)
