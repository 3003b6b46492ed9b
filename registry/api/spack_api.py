"""The JSON API over the spec index: `/api/v1/spack/` lists the caches,
`/api/v1/spack/<cache>/specs` a cache's specs, filtered by `name` and `target`,
paginated by `n` and `last` (with a `Link: <...>; rel="next"` header, as OCI's
tag list). Errors are problem documents (ApiFamily)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.families import PatternFamily
from registry.core.errors import NameUnknown, RegistryError
from registry.core.grammar import validate_name
from registry.spack.catalog import SpecRow
from registry.spack.specs import HASH_RE, NAME_RE

N_DEFAULT = 100
N_MAX = 1000
TARGET_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
# A page boundary: the last spec's name and hash, as the previous page's Link gave it.
LAST_RE = re.compile(rf"(?P<name>{NAME_RE.pattern})/(?P<hash>{HASH_RE.pattern})")


class BadQuery(RegistryError):
    code, status, message = "QUERY_INVALID", 400, "invalid query parameter"


def register(family: PatternFamily) -> None:
    family.add("GET", r"spack/?", list_caches, "pull")
    family.add("GET", r"spack/(?P<name>[^\x00]+?)/specs/?", list_specs, "pull")


def _json(body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(),
                        headers={"Content-Type": "application/json", **(headers or {})})


def spec_json(row: SpecRow) -> dict[str, Any]:
    """How a spec row is shown by the API and `registry spack list --json`."""
    return {"cache": row.cache, "name": row.name, "version": row.version, "hash": row.hash,
            "platform": row.platform, "os": row.os, "target": row.target,
            "compiler": row.compiler, "variants": row.variants,
            "dependencies": [{"name": n, "hash": h} for n, h in row.dependencies],
            "size": row.size, "format": row.format, "source": row.source,
            "pushed_at": row.pushed_at}


def _param(request: web.BaseRequest, key: str, pattern: re.Pattern[str]) -> str | None:
    values = request.query.getall(key, [])
    if len(values) > 1:
        raise BadQuery(f"{key} given more than once", {"parameter": key})
    if not values:
        return None
    if not pattern.fullmatch(values[0]):
        raise BadQuery(f"{key} is malformed", {"parameter": key, "value": values[0][:100]})
    return values[0]


def _n(request: web.BaseRequest) -> int:
    raw = _param(request, "n", re.compile(r"[0-9]{1,7}"))
    if raw is None:
        return N_DEFAULT
    n = int(raw)
    if not 1 <= n <= N_MAX:
        raise BadQuery(f"n must be between 1 and {N_MAX}", {"parameter": "n", "value": raw})
    return n


async def list_caches(request: web.BaseRequest, route: dict[str, str],
                      ctx: Context) -> web.StreamResponse:
    caches = await ctx.specs.caches() if ctx.specs is not None else {}
    shown = visible(request, ctx, "spack", list(caches))
    return _json({"caches": [{"name": c, "specs": caches[c]} for c in shown]})


async def list_specs(request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
    cache = validate_name(route["name"])
    name = _param(request, "name", NAME_RE)
    target = _param(request, "target", TARGET_RE)
    n = _n(request)
    last = _param(request, "last", LAST_RE)
    after = tuple(last.split("/", 1)) if last else None
    if ctx.specs is None or cache not in await ctx.specs.caches():
        raise NameUnknown("no build cache of that name", {"name": cache})
    rows = await ctx.specs.specs(cache, name=name, target=target,
                                 after=after, limit=n + 1)  # type: ignore[arg-type]
    more = len(rows) > n
    rows = rows[:n]
    body: dict[str, Any] = {"cache": cache, "specs": [spec_json(r) for r in rows]}
    headers = {}
    if more:
        query = {k: v for k, v in (("name", name), ("target", target)) if v}
        query.update(n=str(n), last=f"{rows[-1].name}/{rows[-1].hash}")
        link = f"/api/v1/spack/{cache}/specs?{urlencode(query)}"
        body["next"] = link
        headers["Link"] = f'<{link}>; rel="next"'
    return _json(body, headers)
