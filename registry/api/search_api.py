"""`GET /api/v1/search`: images, artifacts and Spack specs found by words and filters
(core/search.py over index/search.py), only in the repositories and caches the caller
may pull, a page at a time with a `Link: <...>; rel="next"` header (docs/discovery.md).
Every parameter is checked here; a malformed one is a 400 problem document."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from urllib.parse import urlencode

import archspec.cpu
from aiohttp import web

from registry.api.access import AllowAll
from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.arch.platforms import FAMILY_TO_OCI, PlatformError, known_target
from registry.core.access import BROWSE
from registry.core.errors import NotFound
from registry.core.search import (
    KINDS,
    MAX_FILTER,
    N_DEFAULT,
    N_MAX,
    SEVERITIES,
    BadSearch,
    MayPull,
    SearchQuery,
    cursor,
    parse_cursor,
    terms,
)
from registry.spack.specs import NAME_RE

PARAMETERS = frozenset({"q", "kind", "os", "arch", "target", "fits", "label", "spack", "signed",
                        "severity", "scanned", "n", "last"})
MAX_LABELS = 8
OS_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
ARCH_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
TARGET_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
VERSION_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def register(family: PatternFamily) -> None:
    family.add("GET", r"search/?", search, BROWSE)


def _one(request: web.BaseRequest, key: str, pattern: re.Pattern[str] | None = None
         ) -> str | None:
    values = request.query.getall(key, [])
    if len(values) > 1:
        raise BadSearch(f"{key} given more than once", {"parameter": key})
    if not values:
        return None
    value = values[0]
    if pattern is not None and not pattern.fullmatch(value):
        raise BadSearch(f"{key} is malformed", {"parameter": key, "value": value[:100]})
    return value


def _flag(request: web.BaseRequest, key: str) -> bool | None:
    raw = _one(request, key)
    if raw is None:
        return None
    if raw.lower() not in _BOOL:
        raise BadSearch(f"{key} must be 1 or 0", {"parameter": key, "value": raw[:20]})
    return _BOOL[raw.lower()]


def _labels(request: web.BaseRequest) -> tuple[tuple[str, str], ...]:
    out = []
    raw = request.query.getall("label", [])
    if len(raw) > MAX_LABELS:
        raise BadSearch(f"at most {MAX_LABELS} labels", {"parameter": "label"})
    for item in raw:
        key, eq, value = item.partition("=")
        if not eq or not key or len(item) > MAX_FILTER or "\x00" in item:
            raise BadSearch("label must be KEY=VALUE", {"parameter": "label",
                                                        "value": item[:100]})
        out.append((key, value))
    return tuple(out)


def _targets(request: web.BaseRequest) -> tuple[str, ...] | None:
    target = _one(request, "target", TARGET_RE)
    fits = _flag(request, "fits")
    if target is None:
        if fits is not None:
            raise BadSearch("fits needs a target", {"parameter": "fits"})
        return None
    return fitting(target) if fits else (target,)


def fitting(target: str) -> tuple[str, ...]:
    """Every target whose builds run on a host of `target`: a build for T runs on H when
    T is H or one of H's ancestors in archspec's order (docs/architecture-aware.md)."""
    try:
        host = known_target(target)
    except PlatformError as exc:
        raise BadSearch(str(exc), {"parameter": "target", "value": target}) from None
    return tuple(sorted({host.name, *(a.name for a in host.ancestors)}))


def arch_targets(arch: str) -> tuple[str, ...]:
    """Every archspec target of the family OCI calls `arch` (amd64: x86_64's), which
    is how a Spack spec, whose arch is a target, is matched by `arch=`."""
    families = {f for f, oci in FAMILY_TO_OCI.items() if oci == arch} | {arch}
    return tuple(sorted(name for name, t in archspec.cpu.TARGETS.items()
                        if t.family.name in families))


def query_of(request: web.BaseRequest) -> SearchQuery:
    """The search a request asks for, or BadSearch naming the parameter at fault."""
    unknown = sorted(set(request.query) - PARAMETERS)
    if unknown:
        raise BadSearch(f"unknown parameter {unknown[0][:40]!r}", {"parameter": unknown[0][:40]})
    kind = _one(request, "kind")
    if kind is not None and kind not in KINDS:
        raise BadSearch(f"kind must be one of {', '.join(KINDS)}", {"parameter": "kind"})
    arch = _one(request, "arch", ARCH_RE)
    spack = _one(request, "spack")
    name = version = None
    if spack is not None:
        name, at, version = spack.partition("@")
        if not NAME_RE.fullmatch(name) or (at and not VERSION_RE.fullmatch(version)):
            raise BadSearch("spack must be NAME or NAME@VERSION", {"parameter": "spack",
                                                                  "value": spack[:100]})
        version = version or None
    n_raw = _one(request, "n", re.compile(r"[0-9]{1,7}"))
    n = N_DEFAULT if n_raw is None else int(n_raw)
    if not 1 <= n <= N_MAX:
        raise BadSearch(f"n must be between 1 and {N_MAX}", {"parameter": "n"})
    last = _one(request, "last")
    severity = _one(request, "severity")
    if severity is not None and severity not in SEVERITIES:
        raise BadSearch(f"severity must be one of {', '.join(SEVERITIES)}",
                        {"parameter": "severity", "value": severity[:100]})
    return SearchQuery(
        terms=terms(_one(request, "q") or ""), kind=kind, os=_one(request, "os", OS_RE),
        arch=arch, arch_targets=arch_targets(arch) if arch else None,
        targets=_targets(request), labels=_labels(request), spack_name=name,
        spack_version=version, signed=_flag(request, "signed"), severity=severity,
        scanned=_flag(request, "scanned"),
        after=parse_cursor(last) if last else None, limit=n)


def may_pull(request: web.BaseRequest, ctx: Context) -> MayPull | None:
    """The caller's pull rights by family and name; None when anyone may pull anything."""
    access = ctx.access
    if access is None or isinstance(access, AllowAll):
        return None
    test = access.puller(request)  # allowed's answer, without a Scope per name
    return lambda family, name: test(name)


def rights_of(request: web.BaseRequest, ctx: Context,
              ) -> tuple[MayPull | None, Hashable | None]:
    """The caller's pull rights and the key their answers are kept under between
    searches (`Search.page`): what every search, the API's and the dashboard's, asks."""
    rights = may_pull(request, ctx)
    key = ctx.access.rights_key(request) if rights is not None and ctx.access else None
    return rights, key


async def search(request: web.BaseRequest, route: dict[str, str],
                 ctx: Context) -> web.StreamResponse:
    if ctx.search is None:
        raise NotFound("no search here (a node cache keeps no index of its upstream)")
    query = query_of(request)
    page = await ctx.search.page(query, *rights_of(request, ctx))
    headers = {"Content-Type": "application/json"}
    body: dict = {"results": page.results}
    if page.next_after is not None:
        params = [(k, v) for k, v in request.query.items() if k not in ("n", "last")]
        params += [("n", str(query.limit)), ("last", cursor(page.next_after))]
        link = f"/api/v1/search?{urlencode(params)}"
        body["next"] = link
        headers["Link"] = f'<{link}>; rel="next"'
    return web.Response(body=json.dumps(body).encode(), headers=headers)
