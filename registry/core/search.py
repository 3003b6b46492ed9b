"""Search over the index's full-text documents (index/search.py): the user's words
checked and split, only what the caller may pull, one page at a time, rendered as
`GET /api/v1/search` and `registry search --json` show it (docs/discovery.md)."""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from registry.core.errors import RegistryError
from registry.index.db import Index, json_or
from registry.index.scans import SEVERITIES
from registry.index.search import BUILD_FIELDS, Hit, SearchQuery, kind_of, phrase

__all__ = ["SEVERITIES", "BadSearch", "Hit", "Page", "Search", "SearchQuery", "cursor",
           "parse_cursor", "result_json", "terms"]

MAX_QUERY = 256  # characters of q
MAX_TERMS = 16  # words of q
MAX_FILTER = 256  # characters of any other parameter
N_DEFAULT = 50
N_MAX = 500
KINDS = ("image", "artifact", "spack")


class BadSearch(RegistryError):
    """A search the registry cannot run: its words or a filter are malformed."""

    code, status, message = "SEARCH_INVALID", 400, "invalid search"


def terms(q: str) -> tuple[str, ...]:
    """The words of `q`, each to be matched as a phrase (a trailing `*`: a prefix).
    Refuses what no search could mean: NUL and other control characters, more than
    MAX_QUERY characters or MAX_TERMS words, or words with no letter or digit only."""
    if len(q) > MAX_QUERY:
        raise BadSearch(f"q is longer than {MAX_QUERY} characters", {"parameter": "q"})
    if any(ord(c) < 32 or ord(c) == 127 for c in q):
        raise BadSearch("q holds a control character", {"parameter": "q"})
    words = tuple(q.split())
    if len(words) > MAX_TERMS:
        raise BadSearch(f"q has more than {MAX_TERMS} words", {"parameter": "q"})
    if words and all(phrase(w) is None for w in words):
        raise BadSearch("q has no letter or digit to search for", {"parameter": "q",
                                                                   "value": q[:100]})
    return words


_CURSOR = re.compile(r"(?P<rank>[-+0-9.eE]{1,40}|-?inf|nan)/(?P<kind>image|artifact|spack)"
                     r"/(?P<repo>[^@\x00]{1,512})@(?P<key>[A-Za-z0-9:+._-]{1,200})")


def cursor(hit: Hit) -> str:
    """The `last` that continues after `hit`: its rank (exactly), kind, repository, key."""
    return f"{hit.rank!r}/{hit.kind}/{hit.repo}@{hit.key}"


def parse_cursor(last: str) -> tuple[float, str, str, str]:
    """A `last` as `cursor` wrote it, or BadSearch."""
    m = _CURSOR.fullmatch(last)
    if m is None:
        raise BadSearch("last is not a position a previous page's Link gave",
                        {"parameter": "last"})
    try:
        rank = float(m["rank"])
    except ValueError:
        raise BadSearch("last is not a position a previous page's Link gave",
                        {"parameter": "last"}) from None
    return rank, m["kind"], m["repo"], m["key"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results, and the hit the next page starts after (None: the last)."""

    results: list[dict[str, Any]]
    next_after: Hit | None


# May the caller pull (family, name)? family is "oci" for repositories, "spack" for caches.
MayPull = Callable[[str, str], bool]
RIGHTS_KEPT = 8  # callers whose visible names Search keeps (the least recently used go)


@dataclass
class _Rights:
    """What one caller (one rights key) may pull among the names search has: each name's
    answer, asked once, and the visible names of the last names list seen."""

    answers: dict[tuple[str, str], bool] = field(default_factory=dict)
    names: tuple[list[str], list[str]] | None = None  # the list `visible` was made of
    visible: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    version: int = 0  # new when `visible` changes (never reused): names the index's table


class Search:
    """The index's search for the API and the command line (see the module docstring)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._rights: OrderedDict[Hashable, _Rights] = OrderedDict()
        self._versions = itertools.count(1)

    async def page(self, query: SearchQuery, may_pull: MayPull | None,
                   rights_key: Hashable | None = None) -> Page:
        """The results of `query` that `may_pull` admits (None: all), a full page of
        them however few repositories the caller may see: the admitted names are
        part of the SQL query, not a filter over its answer.

        `rights_key`: equal for two calls only when their `may_pull` answer alike for
        every name (the caller's identity and the rules' generation, api/search_api.py).
        With it, each name is asked once per key, not once per search, and the index
        keeps the admitted names as a table: a caller who may pull thousands of the
        repositories pays for them when they change, not on every search."""
        if may_pull is not None:
            names = await self.index.search_names()
            if rights_key is None:
                visible = (_admitted(may_pull, "oci", names[0], {}),
                           _admitted(may_pull, "spack", names[1], {}))
                query = replace(query, visible=visible)
            else:
                rights = self._kept(rights_key, may_pull, names)
                query = replace(query, visible=rights.visible,
                                visible_key=(rights_key, rights.version))
        hits, details = await self.index.search(replace(query, limit=query.limit + 1))
        more = len(hits) > query.limit
        hits, details = hits[:query.limit], details[:query.limit]
        return Page([result_json(h, d) for h, d in zip(hits, details, strict=True)],
                    hits[-1] if more and hits else None)

    async def recent(self, limit: int, may_pull: MayPull | None) -> list[dict[str, Any]]:
        """The `limit` tags pushed last in the repositories `may_pull` admits (None:
        all), newest first (the dashboard's home page): `repository`, `tag`, `digest`,
        `pushed_at`, and the manifest's `kind` (image or artifact, as search says),
        `mediaType`, `size` and, for an artifact, `artifactType`."""
        repos = None
        if may_pull is not None:
            oci, _ = await self.index.search_names()
            repos = [n for n in oci if may_pull("oci", n)]
        out = []
        for r in await self.index.recent_tags(limit, repos):
            kind = kind_of(r["media_type"] or "", r["artifact_type"] or "")
            out.append({"repository": r["repo"], "tag": r["tag"], "digest": r["digest"],
                        "pushed_at": r["updated_at"], "kind": kind,
                        "mediaType": r["media_type"], "size": r["size"],
                        "artifactType": r["artifact_type"] if kind == "artifact" else None})
        return out

    async def summary(self, repo: str, digest: str) -> dict[str, Any] | None:
        """The scan summary of manifest `digest` in `repo`, from the index (the dashboard's
        read; the caller checks the right to pull `repo`):

            {"max_severity": "high", "scanned_at": 1796000000.0,
             "counts": {"critical": 0, "high": 2, "medium": 1, "low": 0, "unknown": 4}}

        `max_severity` is the worst level among its vulnerabilities: "critical", "high",
        "medium", "low", "unknown" (vulnerabilities whose advisories give no severity) or
        "none" (scanned and matched against the imported advisories, nothing found); None
        when scanned but not yet matched. `counts`: vulnerabilities per level. For an
        index of images, its children's together (worst level, counts added, the latest
        scan). None while the manifest (or a child) has no result: not scanned yet, or
        not a manifest the index knows in `repo`."""
        found = await self.index.scan_summary(repo, digest)
        if found is None:
            return None
        return {"max_severity": found.max_severity, "counts": found.counts,
                "scanned_at": found.scanned_at}

    async def pulls(self, repo: str, digest: str) -> int:
        """How often manifest `digest` was pulled from `repo`, by the index's `pulls`
        rows (the dashboard's read; counted off the request path and flushed every
        `[index] pull_flush_seconds`, so a pull shows up a few seconds later)."""
        return sum(p.count for p in await self.index.pull_stats(repo, digest)
                   if p.kind == "manifest")

    def _kept(self, key: Hashable, may_pull: MayPull, names: tuple[list[str], list[str]]
              ) -> _Rights:
        """The rights kept under `key`, brought up to `names` (the index hands out the
        same lists while nothing was written): only names not asked before are asked."""
        rights = self._rights.get(key)
        if rights is None:
            if len(self._rights) >= RIGHTS_KEPT:
                self._rights.popitem(last=False)
            rights = self._rights[key] = _Rights()
        self._rights.move_to_end(key)
        if rights.names is not names:
            visible = (_admitted(may_pull, "oci", names[0], rights.answers),
                       _admitted(may_pull, "spack", names[1], rights.answers))
            if visible != rights.visible:
                rights.visible, rights.version = visible, next(self._versions)
            rights.names = names
        return rights


def _admitted(may_pull: MayPull, family: str, names: Sequence[str],
              answers: dict[tuple[str, str], bool]) -> tuple[str, ...]:
    """The `names` of `family` that `may_pull` admits, asking only what `answers`
    (updated) does not know."""
    out = []
    for name in names:
        key = (family, name)
        ok = answers.get(key)
        if ok is None:
            ok = answers[key] = may_pull(family, name)
        if ok:
            out.append(name)
    return tuple(out)


def result_json(hit: Hit, d: dict[str, Any]) -> dict[str, Any]:
    """One result as the API shows it (docs/discovery.md)."""
    out: dict[str, Any] = {"kind": hit.kind, "repository": hit.repo, "rank": hit.rank}
    if hit.kind == "spack":
        spec = d.get("spec") or {}
        target = spec.get("target") or ""
        out.update({
            "cache": hit.repo, "tag": None, "digest": None, "hash": hit.key,
            "name": spec.get("name"), "version": spec.get("version"),
            "compiler": spec.get("compiler"), "variants": json_or(spec.get("variants"), {}),
            "dependencies": [{"name": x[0], "hash": x[1]}
                             for x in json_or(spec.get("dependencies"), [])
                             if isinstance(x, list) and len(x) == 2],
            "platforms": [{"os": spec.get("platform"), "os_release": spec.get("os"),
                           "target": target}],
            "size": spec.get("size")})
        return out
    tags = d["tags"]
    out.update({
        "tag": tags[0] if tags else None, "tags": tags, "digest": hit.key,
        "mediaType": d["media_type"],
        "platforms": [{k: v for k, v in zip(BUILD_FIELDS, b, strict=True) if v is not None}
                      for b in d["builds"]],
        "annotations": json_or(d["annotations"], {}), "labels": json_or(d["labels"], {}),
        "size": d["size"], "signed": d["signed"], "max_severity": d["max_severity"],
        "scanned": d["scanned"]})
    if hit.kind == "artifact":
        out["artifactType"] = d["artifact_type"]
        if d["subject"]:
            out["subject"] = d["subject"]
    return out
