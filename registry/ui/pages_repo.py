"""`/ui/r/<name>`: a repository's tags, one page at a time (a Spack build cache may
hold 100,000), each with what it points at: image, index or artifact, its builds
(platform and archspec target), sizes, pulls, signature and scan state, referrers.
Routed with PULL on the repository, as the API is; the manifest pages are
pages_manifest.py."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.access import PULL
from registry.core.errors import ManifestUnknown, NameUnknown, RegistryError
from registry.core.grammar import Digest, is_valid_tag, validate_name
from registry.core.pagination import page as page_of
from registry.core.pagination import parse_n
from registry.ui import pages_manifest
from registry.ui.manifest_view import Summary, summarize
from registry.ui.render import page

PAGE_DEFAULT = 25  # tags on one page
PAGE_MAX = 100
NAME = r"(?P<name>[^\x00]+?)"


class BadParameter(RegistryError):
    """A query parameter of a dashboard page that names nothing it could show."""

    code, status, message = "PARAMETER_INVALID", 400, "invalid parameter"


def register(family: PatternFamily) -> None:
    # The manifest routes first: `/-/` never occurs in a repository name (a name
    # component is never `-` alone), so `r/NAME/-/...` is always a manifest's page.
    family.add("GET", rf"r/{NAME}/-/tag/(?P<tag>[^/\x00]*)", pages_manifest.by_tag, PULL)
    family.add("GET", rf"r/{NAME}/-/(?P<digest>[^/\x00]*)", pages_manifest.manifest, PULL)
    family.add("GET", r"r/(?P<name>[^\x00]+)", repository, PULL)


def page_size(request: web.BaseRequest) -> int:
    """`n`: tags per page (PAGE_DEFAULT, at most PAGE_MAX)."""
    try:
        n = parse_n(request.query.get("n"))
    except RegistryError:
        raise BadParameter("n must be a number of tags", {"parameter": "n"}) from None
    return PAGE_DEFAULT if not n else min(n, PAGE_MAX)


async def repository(request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
    name = validate_name(route["name"])  # 400 NAME_INVALID
    n = page_size(request)
    last = request.query.get("last") or None
    if last is not None and not is_valid_tag(last):
        raise BadParameter("last must be a tag", {"parameter": "last"})
    tags = await ctx.registry.tags.list(name)  # sorted and cached: only a page is read
    if not tags and not await ctx.registry.catalog.exists(name):
        raise NameUnknown(detail={"name": name})
    chunk, more = page_of(tags, n, last)
    digests: dict[str, Digest] = {}
    for tag in chunk:
        try:
            digests[tag] = await ctx.registry.tags.resolve(name, tag)
        except ManifestUnknown:  # deleted meanwhile
            continue
    unique = list(dict.fromkeys(digests.values()))
    summaries: dict[Digest, Summary] = dict(zip(unique, await asyncio.gather(
        *(summarize(ctx, name, d) for d in unique)), strict=True))
    rows = [(tag, summaries[d]) for tag, d in digests.items()]
    next_url = (f"/ui/r/{name}?n={n}&last={quote(chunk[-1], safe='')}"
                if more and chunk else "")
    return page(request, ctx, "repo.html", name=name, rows=rows, total=len(tags),
                next_url=next_url, first_url=f"/ui/r/{name}" if last else "")
