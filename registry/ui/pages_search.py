"""The search results page, `GET /ui/search`: the parameters of `GET /api/v1/search`
(read by the same `query_of`, answered by the same `Search.page`, only what the caller
may pull), results linked to their pages, the filters in force as chips that remove
them, facets of the page's results as links that add a filter, and the next page by
the API's cursor. A plain GET form: usable without JavaScript."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.api.search_api import query_of, rights_of
from registry.core.access import BROWSE
from registry.core.errors import NotFound
from registry.core.search import KINDS, SEVERITIES, BadSearch, cursor
from registry.ui.render import page, redirect

# The filters a chip shows, in the form's order (label may repeat).
FILTERS = ("kind", "os", "arch", "target", "fits", "label", "spack", "signed", "severity",
           "scanned")
FACET_VALUES = 8  # the most frequent values a facet offers
SHOWN_PAIRS = 4  # annotations and labels shown per result
FACET_NAMES = {"kind": "Kind", "os": "OS", "arch": "Architecture", "target": "Target",
               "signed": "Signed", "severity": "Worst vulnerability"}


def register(family: PatternFamily) -> None:
    family.add("GET", r"search", search_page, BROWSE)


Params = list[tuple[str, str]]


def _href(params: Params) -> str:
    return "/ui/search" + ("?" + urlencode(params) if params else "")


def _with(params: Params, key: str, value: str) -> str:
    """The search with `key=value` added (replacing `key`, but for labels)."""
    kept = [(k, v) for k, v in params
            if k not in ("last",) and (k != key or (key == "label" and v != value))]
    return _href([*kept, (key, value)])


def _without(params: Params, key: str, value: str) -> str:
    return _href([(k, v) for k, v in params if k != "last" and (k, v) != (key, value)])


def _platform(p: dict[str, Any]) -> str:
    text = "/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k))
    target = p.get("target")
    return f"{text} ({target})" if text and target else text or str(target or "")


def _pairs(mapping: Any) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return []
    return [(str(k), str(v)) for k, v in list(mapping.items())[:SHOWN_PAIRS]]


def result_view(r: dict[str, Any]) -> dict[str, Any]:
    """What a result row shows (everything in it is escaped by the template)."""
    spack = r["kind"] == "spack"
    if spack:
        href = f"/ui/spack/{r['cache']}/-/{r['hash']}"
        title = f"{r.get('name')}@{r.get('version')}"
    else:
        href = f"/ui/r/{r['repository']}/-/{r['digest']}"
        title = r["tag"] or r["digest"][:19]
    return {"kind": r["kind"], "repository": r["repository"], "href": href, "title": title,
            "repo_href": f"/ui/spack/{r['cache']}" if spack else f"/ui/r/{r['repository']}",
            "tags": (r.get("tags") or [])[1:6],
            "platforms": [x for x in (_platform(p) for p in r.get("platforms") or []) if x],
            "annotations": _pairs(r.get("annotations")), "labels": _pairs(r.get("labels")),
            "artifact_type": r.get("artifactType"), "compiler": r.get("compiler"),
            "size": r.get("size"), "signed": r.get("signed"),
            "severity": r.get("max_severity"), "scanned": r.get("scanned")}


def facets(results: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
    """Per facet, the values among this page's results with their counts, each a link
    adding that filter; a facet already in force is not offered again."""
    given = {k for k, _ in params}
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("kind", "os", "arch", "target",
                                                              "signed", "severity")}
    for r in results:
        counts["kind"][r["kind"]] += 1
        for key, field in (("os", "os"), ("arch", "architecture"), ("target", "target")):
            counts[key].update({str(p[field]) for p in r.get("platforms") or []
                                if p.get(field)})
        if r["kind"] != "spack":
            counts["signed"]["1" if r.get("signed") else "0"] += 1
            if r.get("max_severity"):
                counts["severity"][str(r["max_severity"])] += 1
    out = []
    for key, counter in counts.items():
        if key in given or not counter:
            continue
        values = [{"value": value, "count": n, "href": _with(params, key, value),
                   "text": _value_text(key, value)}
                  for value, n in counter.most_common(FACET_VALUES)]
        out.append({"name": FACET_NAMES[key], "values": values})
    return out


def _value_text(key: str, value: str) -> str:
    if key in ("signed", "scanned", "fits"):
        return {"1": "yes", "0": "no"}.get(value, value)
    if key == "severity":
        return f"≥ {value}"
    return value


def chips(params: Params) -> list[dict[str, str]]:
    return [{"name": k, "text": _value_text(k, v), "href": _without(params, k, v)}
            for k, v in params if k in FILTERS]


async def search_page(request: web.BaseRequest, route: dict[str, str],
                      ctx: Context) -> web.StreamResponse:
    if ctx.search is None:
        raise NotFound("no search here (a node cache keeps no index of its upstream)")
    pairs: Params = list(request.query.items())
    filled = [(k, v) for k, v in pairs if v != ""]
    if len(filled) != len(pairs):  # the form's empty fields: the same search without them
        return redirect(request, _href(filled))
    values: dict[str, Any] = {"params": dict(pairs), "kinds": KINDS,
                              "severities": SEVERITIES, "labels": request.query.getall(
                                  "label", []), "q": request.query.get("q", "")}
    try:
        query = query_of(request)
    except BadSearch as exc:
        return page(request, ctx, "search.html", status=400, error=exc.message, results=[],
                    facets=[], chips=chips(pairs), next=None, **values)
    found = await ctx.search.page(query, *rights_of(request, ctx))
    next_href = None
    if found.next_after is not None:
        kept = [(k, v) for k, v in pairs if k not in ("n", "last")]
        next_href = _href([*kept, ("n", str(query.limit)), ("last", cursor(found.next_after))])
    return page(request, ctx, "search.html", error=None,
                results=[result_view(r) for r in found.results],
                facets=facets(found.results, pairs), chips=chips(pairs), next=next_href,
                **values)
