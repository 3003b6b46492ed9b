"""The composer: pick a build cache, specs (the spec box suggests a cache's specs as
one types, through /ui/spack/<cache>/-/suggest), a target and a base, and get an image
made of the cache's builds, with the commands that pull it.

`GET /ui/compose` is BROWSE: its cache list is what the caller may pull. The form
POSTs to `/ui/compose/<cache>/images`, routed with PUSH on `<cache>/images` as the
API's `POST /api/v1/spack/<cache>/images` is, and calls the same function
(api.compose_api.compose) with the same request, so both answer the same image
(the same digest for the same set) and the same errors; an error is shown above the
form, kept as it was sent. Without JavaScript the page is two plain forms: choosing
the cache reloads the page (the POST's address names the cache)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from registry.api.common import Context, visible
from registry.api.compose_api import SPECS_MAX, checked, compose
from registry.api.families import PatternFamily
from registry.api.spack_api import BadQuery
from registry.arch.platforms import known_targets
from registry.core.access import BROWSE, PUSH
from registry.core.errors import NameUnknown, RegistryError
from registry.core.grammar import validate_name
from registry.ui.commands import host_of, pull_commands
from registry.ui.csrf import check_csrf
from registry.ui.forms import read_form
from registry.ui.pages_spack import optional
from registry.ui.render import page

FIELDS = ("specs", "target", "base", "tag")
# Errors of the request itself, shown above the form kept as sent; any other error
# (the access step's 401/403, a CSRF refusal) is the error page.
SHOWN = frozenset({400, 403, 404, 409, 413})
_CACHE = re.compile(r"[^\x00]{1,255}")
_SPEC = re.compile(r"[^\x00]{1,512}")


def register(family: PatternFamily) -> None:
    family.add("GET", r"compose/?", compose_page, BROWSE)
    # The route's resource is what the form writes, `<cache>/images`: the access step
    # checks push there, as for the API; compose() checks pull on the cache and base.
    family.add("POST", r"compose/(?P<name>[^\x00]+?/images)/?", compose_post, PUSH)


async def _caches(request: web.BaseRequest, ctx: Context) -> list[str]:
    names = await ctx.specs.cache_names() if ctx.specs is not None else []
    return visible(request, ctx, "spack", names)


def _form(request: web.BaseRequest, ctx: Context, caches: list[str], cache: str | None,
          values: dict[str, str], status: int = 200, **extra: Any) -> web.Response:
    shown = {"error": None, "detail": {}, "made": None, "commands": []} | extra
    return page(request, ctx, "compose.html", status=status, caches=caches, cache=cache,
                values=values, targets=known_targets(), specs_max=SPECS_MAX, **shown)


async def compose_page(request: web.BaseRequest, route: dict[str, str],
                       ctx: Context) -> web.StreamResponse:
    asked = optional(request, "cache", _CACHE)
    spec = optional(request, "spec", _SPEC) or ""
    caches = await _caches(request, ctx)
    if asked is not None:
        validate_name(asked)
        if asked not in caches:  # hidden and absent look the same
            raise NameUnknown("no build cache of that name", {"name": asked})
    cache = asked or (caches[0] if caches else None)
    return _form(request, ctx, caches, cache, {"specs": spec, "target": "", "base": "",
                                               "tag": ""})


def body_of(form: dict[str, str]) -> dict[str, Any]:
    """The API's request body for the form: one spec a line, empty fields left out."""
    specs = [line.strip() for line in form.get("specs", "").splitlines() if line.strip()]
    body: dict[str, Any] = {"specs": specs}
    for key in ("target", "base", "tag"):
        value = form.get(key, "").strip()
        if value:
            body[key] = value
    return body


async def compose_post(request: web.BaseRequest, route: dict[str, str],
                       ctx: Context) -> web.StreamResponse:
    repo = validate_name(route["name"])
    form = await read_form(request)
    check_csrf(request, form)
    cache = repo.removesuffix("/images")
    values = {key: form.get(key, "") for key in FIELDS}
    caches = await _caches(request, ctx)
    try:
        unknown = sorted(set(form) - {*FIELDS, "csrf"})
        if unknown:
            raise BadQuery("unknown fields", {"fields": [k[:64] for k in unknown[:8]]})
        made = await compose(request, ctx, repo, checked(body_of(form)))
    except RegistryError as err:
        if err.status not in SHOWN:
            raise
        return _form(request, ctx, caches, cache, values, status=err.status,
                     error=err.message, detail=err.detail or {})
    return _form(request, ctx, caches, cache, values, made=made,
                 commands=pull_commands(host_of(request), made["repository"], made["digest"]))
