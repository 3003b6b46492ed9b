"""The JSON API over the spec index: `/api/v1/spack/` lists the caches,
`/api/v1/spack/<cache>/specs` a cache's specs, filtered by `name` and `target`,
paginated by `n` and `last` (with a `Link: <...>; rel="next"` header, as OCI's
tag list); `/api/v1/spack/<cache>/resolve?spec=zlib@1.2&target=zen3&os=ubuntu22.04`
which cached builds of a package fit a host, best first (spack.versions matches the
versions, arch.ordered ranks). Errors are problem documents (ApiFamily)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.families import PatternFamily
from registry.arch.fit import Verdict
from registry.arch.host import Candidate, Host
from registry.arch.ordered import rank_in_order
from registry.arch.platforms import PlatformError, known_target
from registry.core.errors import NameUnknown, RegistryError
from registry.core.grammar import validate_name
from registry.spack.catalog import SpecRow
from registry.spack.specs import HASH_RE, NAME_RE
from registry.spack.versions import InvalidVersion, SpecQuery, version_key

N_DEFAULT = 100
N_MAX = 1000
# The builds of one package a resolve looks at; a cache holding more is cut off here.
RESOLVE_MAX = 5000
SPEC_RE = re.compile(r"[A-Za-z0-9_.@:,=+-]{1,256}")
OS_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TARGET_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
# A page boundary: the last spec's name and hash, as the previous page's Link gave it.
LAST_RE = re.compile(rf"(?P<name>{NAME_RE.pattern})/(?P<hash>{HASH_RE.pattern})")


class BadQuery(RegistryError):
    code, status, message = "QUERY_INVALID", 400, "invalid query parameter"


class NothingFits(RegistryError):
    code, status, message = "NOTHING_FITS", 404, "no cached build fits the host"


def register(family: PatternFamily) -> None:
    family.add("GET", r"spack/?", list_caches, "pull")
    family.add("GET", r"spack/(?P<name>[^\x00]+?)/specs/?", list_specs, "pull")
    family.add("GET", r"spack/(?P<name>[^\x00]+?)/resolve/?", resolve_spec, "pull")


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


def query_param(request: web.BaseRequest, key: str, pattern: re.Pattern[str]) -> str | None:
    """The query parameter `key` if given once and matching `pattern`, None if absent;
    BadQuery (400) otherwise (the dashboard's Spack pages read theirs the same way)."""
    values = request.query.getall(key, [])
    if len(values) > 1:
        raise BadQuery(f"{key} given more than once", {"parameter": key})
    if not values:
        return None
    if not pattern.fullmatch(values[0]):
        raise BadQuery(f"{key} is malformed", {"parameter": key, "value": values[0][:100]})
    return values[0]


def _n(request: web.BaseRequest) -> int:
    raw = query_param(request, "n", re.compile(r"[0-9]{1,7}"))
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
    name = query_param(request, "name", NAME_RE)
    target = query_param(request, "target", TARGET_RE)
    n = _n(request)
    last = query_param(request, "last", LAST_RE)
    after = tuple(last.split("/", 1)) if last else None
    if ctx.specs is not None:
        await ctx.specs.catch_up(cache)
    if ctx.specs is None or not await ctx.specs.has_cache(cache):
        raise NameUnknown("no build cache of that name", {"name": cache})
    rows = await ctx.specs.specs(cache, name=name, target=target, after=after, limit=n + 1)
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


def _newest_first(row: SpecRow) -> tuple:
    # A version spack would not write sorts last; the hash keeps the order stable.
    try:
        key: tuple = version_key(row.version)
    except InvalidVersion:
        key = ((), ())
    return key, row.hash


def candidate_json(row: SpecRow, verdict: Verdict) -> dict[str, Any]:
    """One cached build as the resolve answer shows it."""
    return {"hash": row.hash, "name": row.name, "version": row.version,
            "platform": row.platform, "os": row.os, "target": row.target,
            "compiler": row.compiler, "fits": verdict.fits, "reason": verdict.reason,
            "rank": verdict.rank}


async def resolve_spec(request: web.BaseRequest, route: dict[str, str],
                       ctx: Context) -> web.StreamResponse:
    cache = validate_name(route["name"])
    spec, target = query_param(request, "spec", SPEC_RE), query_param(request, "target", TARGET_RE)
    os_name = query_param(request, "os", OS_RE)
    if spec is None or target is None:
        raise BadQuery("spec and target are required",
                       {"parameter": "spec" if spec is None else "target"})
    try:
        query = SpecQuery.parse(spec)
    except InvalidVersion as exc:
        raise BadQuery(str(exc), {"parameter": "spec", "value": spec[:100]}) from None
    try:
        host = Host(os=os_name or "", target=known_target(target).name)
    except PlatformError as exc:
        raise BadQuery(str(exc), {"parameter": "target", "value": target[:100]}) from None
    if ctx.specs is not None:
        await ctx.specs.catch_up(cache)
    if ctx.specs is None or not await ctx.specs.has_cache(cache):
        raise NameUnknown("no build cache of that name", {"name": cache})
    rows = [r for r in await ctx.specs.specs(cache, name=query.name, limit=RESOLVE_MAX)
            if query.matches(r.version)]
    rows.sort(key=_newest_first, reverse=True)
    by_hash = {r.hash: r for r in rows}
    verdicts = rank_in_order((Candidate(r.hash, r.os, r.target) for r in rows), host,
                             any_os=os_name is None)
    body: dict[str, Any] = {
        "cache": cache, "spec": query.text, "host": {"target": host.target, "os": os_name},
        "candidates": [candidate_json(by_hash[v.candidate.digest], v) for v in verdicts]}
    if not verdicts or not verdicts[0].fits:
        raise NothingFits(f"no cached build of {query.text} fits {host.target}", body)
    chosen = by_hash[verdicts[0].candidate.digest]
    body.update(hash=chosen.hash, name=chosen.name, version=chosen.version)
    return _json(body)
