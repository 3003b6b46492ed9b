"""The Spack pages: the build caches the caller may pull (BROWSE), one cache's specs
filtered by name, version, target and compiler a page at a time (PULL on the cache),
one spec with its dependencies and the commands that install it (PULL), and the
suggestions the composer's spec box asks for as one types (PULL, JSON).

Every list is a bounded query of the spec catalog (registry.spack.catalog): a cache
of 200,000 specs costs one page of rows, never all of them."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.families import PatternFamily
from registry.api.spack_api import LAST_RE, TARGET_RE, BadQuery, query_param
from registry.core.access import BROWSE, PULL
from registry.core.errors import NameUnknown, NotFound
from registry.core.grammar import validate_name
from registry.spack.catalog import SpecCatalog, SpecRow
from registry.spack.specs import HASH_RE, NAME_RE, VERSION_RE
from registry.ui.commands import host_of, mirror_name, spack_commands
from registry.ui.render import page
from registry.ui.spec_view import spec_details

PAGE = 50
N_MAX = 200
SUGGEST_MAX = 20
COMPILER_RE = re.compile(r"[a-z0-9][a-z0-9_.+-]{0,63}(?:@=?[A-Za-z0-9_.:-]{1,64})?")
N_RE = re.compile(r"[0-9]{1,4}")
# What one types into the spec box: a name or the start of one, maybe `@version`, or
# `/hash` (a prefix of one).
_SUGGEST = re.compile(r"(?P<name>[a-z0-9][a-z0-9_-]{0,127})(?:@(?P<version>[A-Za-z0-9_.=+-]"
                      r"[A-Za-z0-9_.=+:~-]{0,63})?)?|/(?P<hash>[a-z2-7]{1,32})")
# Versions the composer's spec grammar (spack.wanted) reads after `@`.
_WANTED_VERSION = re.compile(r"[A-Za-z0-9_.:,=-]{1,256}")
FILTERS = (("name", NAME_RE), ("version", VERSION_RE), ("target", TARGET_RE),
           ("compiler", COMPILER_RE))


def register(family: PatternFamily) -> None:
    family.add("GET", r"spack/?", caches_page, BROWSE)
    family.add("GET", r"spack/(?P<name>[^\x00]+?)/-/suggest", suggest, PULL)
    family.add("GET", r"spack/(?P<name>[^\x00]+?)/-/(?P<hash>[^/\x00]*)", spec_page, PULL)
    family.add("GET", r"spack/(?P<name>[^\x00]+?)/?", cache_page, PULL)


def optional(request: web.BaseRequest, key: str, pattern: re.Pattern[str]) -> str | None:
    """A GET form's field: None when absent or left empty, 400 when malformed."""
    return query_param(request, key, re.compile(f"(?:{pattern.pattern})?")) or None


def catalog(ctx: Context) -> SpecCatalog:
    if ctx.specs is None:
        raise NotFound("this registry keeps no Spack spec index")
    specs: SpecCatalog = ctx.specs
    return specs


async def known_cache(ctx: Context, name: str) -> tuple[SpecCatalog, str]:
    """The catalog and the cache's name, or 404 when the catalog holds no spec of it."""
    cache = validate_name(name)
    specs = catalog(ctx)
    if not await specs.has_cache(cache):
        raise NameUnknown("no build cache of that name", {"name": cache})
    return specs, cache


async def caches_page(request: web.BaseRequest, route: dict[str, str],
                      ctx: Context) -> web.StreamResponse:
    counts = await ctx.specs.caches() if ctx.specs is not None else {}
    shown = visible(request, ctx, "spack", list(counts))
    return page(request, ctx, "spack_caches.html",
                caches=[(name, counts[name]) for name in shown])


async def cache_page(request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
    filters = {key: optional(request, key, pattern) for key, pattern in FILTERS}
    raw_n = optional(request, "n", N_RE)
    n = int(raw_n) if raw_n else PAGE
    if not 1 <= n <= N_MAX:
        raise BadQuery(f"n must be between 1 and {N_MAX}", {"parameter": "n"})
    last = optional(request, "last", LAST_RE)
    specs, cache = await known_cache(ctx, route["name"])
    after = (last.split("/", 1)[0], last.split("/", 1)[1]) if last else None
    rows = await specs.specs(cache, name_prefix=filters["name"], version=filters["version"],
                             target=filters["target"], compiler=filters["compiler"],
                             after=after, limit=n + 1)
    more = len(rows) > n
    rows = rows[:n]
    given = {k: v for k, v in filters.items() if v}
    following = None
    if more:
        following = "?" + urlencode({**given, "n": str(n),
                                     "last": f"{rows[-1].name}/{rows[-1].hash}"})
    return page(request, ctx, "spack_cache.html", cache=cache, rows=rows,
                filters={k: v or "" for k, v in filters.items()}, following=following,
                first=("?" + urlencode(given)) if given else "?", paged=last is not None,
                host=host_of(request), mirror=mirror_name(cache))


async def spec_page(request: web.BaseRequest, route: dict[str, str],
                    ctx: Context) -> web.StreamResponse:
    dag_hash = route["hash"]
    if not HASH_RE.fullmatch(dag_hash):
        raise BadQuery("not a Spack DAG hash (32 characters of base32)",
                       {"hash": dag_hash[:64]})
    specs, cache = await known_cache(ctx, route["name"])
    row = await specs.spec(cache, dag_hash)
    if row is None:
        raise NotFound(f"the cache holds no spec /{dag_hash}", {"hash": dag_hash})
    details = await spec_details(ctx, specs, cache, row)
    host = host_of(request)
    return page(request, ctx, "spack_spec.html", cache=cache, row=row, host=host,
                commands=spack_commands(host, cache, row.name, row.hash), **details)


def suggestion(row: SpecRow) -> dict[str, Any]:
    """One row as the spec box offers it; `spec` is what picking it puts in the box."""
    version = f"@{row.version}" if _WANTED_VERSION.fullmatch(row.version) else ""
    return {"name": row.name, "version": row.version, "hash": row.hash,
            "target": row.target, "compiler": row.compiler,
            "spec": f"{row.name}{version} /{row.hash}"}


async def suggest(request: web.BaseRequest, route: dict[str, str],
                  ctx: Context) -> web.StreamResponse:
    q = (optional(request, "q", re.compile(r"[^\x00]{1,200}")) or "").strip()
    m = _SUGGEST.fullmatch(q)
    if q and m is None:
        raise BadQuery("q: a name, name@version or /hash, or the start of one",
                       {"parameter": "q"})
    specs, cache = await known_cache(ctx, route["name"])
    rows: list[SpecRow] = []
    if m is not None:
        version = m.group("version")
        if m.group("hash"):
            rows = await specs.specs(cache, hash_prefix=m.group("hash"), limit=SUGGEST_MAX)
        elif version is not None:
            rows = await specs.specs(cache, name=m.group("name"), version=version,
                                     limit=SUGGEST_MAX)
        else:
            rows = await specs.specs(cache, name_prefix=m.group("name"), limit=SUGGEST_MAX)
    body = {"cache": cache, "suggestions": [suggestion(r) for r in rows]}
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(),
                        headers={"Content-Type": "application/json",
                                 "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"})
