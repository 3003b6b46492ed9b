"""Retention of untagged manifests: `[gc] retention = ["ci/* keep=10 days=7"]`.

CI pipelines push an image per commit and move a tag: the images the tag leaves
behind stay, untagged, and their layers with them. A rule names a glob over
repository names (`*` crosses `/`, the first matching rule applies) and keeps, of
each matching repository's untagged manifests, the `keep` most recently pushed and
those pushed within `days`; the collector (core/gc.py) deletes the others before
it marks, so their blobs are freed in the same collection.

Never deleted, whatever the rule: a manifest a tag points at; one an index kept
names (a multi-arch image's platforms); a referrer (signature, SBOM) whose subject
is kept; anything pushed within the grace period (a multi-arch push sends its
platform manifests before the index naming them); and a manifest pushed or named
while the collection runs. Pushes mark what they name in the collection's seen
marks before they write a link (core/gc.py), and `Manifests.delete_untagged`
checks the mark before and after it removes the revision link, putting the link
back when one appeared: a tag pushed at the very moment never points at nothing.
"""

from __future__ import annotations

import fnmatch
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from registry.core.errors import DigestInvalid
from registry.core.grammar import Digest
from registry.core.manifest_format import INDEX_TYPES, named_digests
from registry.core.protocols import Manifests, Tags
from registry.specs import parse_retention
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound

MAX_INDEX = 4 << 20


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Of the untagged manifests of repositories matching `pattern`, keep the
    `keep` newest and those younger than `days` (None: that bound is not used)."""

    pattern: str
    keep: int | None = None
    days: float | None = None

    @classmethod
    def parse(cls, text: str) -> RetentionRule:
        return cls(*parse_retention(text))

    def covers(self, repo: str) -> bool:
        return fnmatch.fnmatchcase(repo, self.pattern)


def retention_rules(texts: list[str]) -> list[RetentionRule]:
    """`[gc] retention`, parsed (the config check has validated it)."""
    return [RetentionRule.parse(t) for t in texts]


def rule_for(rules: list[RetentionRule], repo: str) -> RetentionRule | None:
    """The first rule covering `repo`."""
    return next((r for r in rules if r.covers(repo)), None)


@dataclass(slots=True)
class _Revision:
    mtime: float
    media_type: str = ""
    subject: str | None = None


async def _revisions(driver: Driver, repo: str) -> dict[str, _Revision]:
    """The repository's manifests with the time each was last pushed."""
    found: dict[str, _Revision] = {}
    async for info in driver.walk(paths.revisions_root(repo)):
        link = paths.link_of(info.path)
        if link is not None and link.repo == repo and link.kind == paths.MANIFEST:
            found[str(Digest(*link.digest))] = _Revision(info.mtime)
    return found


async def _describe(driver: Driver, repo: str, digest: str, rev: _Revision) -> None:
    try:
        link = paths.RevisionLink.parse(await driver.get_content(
            paths.revision_link(repo, Digest.parse(digest)), paths.REVISION_LINK_MAX))
    except (PathNotFound, ValueError):
        return  # deleted meanwhile, or unreadable: judged by tags and age alone
    rev.media_type = link.media_type
    rev.subject = link.subject


async def _children(driver: Driver, digest: str) -> set[str]:
    try:
        raw = await driver.get_content(paths.blob(Digest.parse(digest)), MAX_INDEX)
    except (PathNotFound, DigestInvalid):
        return set()
    return named_digests(raw)


async def doomed(driver: Driver, tags: Tags, repo: str, rule: RetentionRule,
                 now: float, grace: float) -> list[Digest]:
    """The untagged manifests of `repo` that `rule` lets go, oldest first."""
    revisions = await _revisions(driver, repo)
    tagged = {str(d) for d in (await tags.targets(repo)).values()}
    if not set(revisions) - tagged:
        return []
    referrers: dict[str, list[str]] = {}
    for digest, rev in revisions.items():
        await _describe(driver, repo, digest, rev)
        if rev.subject is not None:
            referrers.setdefault(rev.subject, []).append(digest)
    kept: set[str] = set()

    async def keep_with_dependants(roots: set[str]) -> None:
        # What a kept manifest names (an index's children) and what names it as
        # its subject (referrers) are kept with it, transitively.
        todo = [d for d in roots if d in revisions and d not in kept]
        kept.update(todo)
        while todo:
            digest = todo.pop()
            more: set[str] = set()
            if revisions[digest].media_type in INDEX_TYPES:
                more |= await _children(driver, digest)
            more.update(referrers.get(digest, ()))
            fresh = [d for d in more if d in revisions and d not in kept]
            kept.update(fresh)
            todo.extend(fresh)

    await keep_with_dependants(tagged)
    # Ranked: what is left, apart from referrers, which follow their subject.
    ranked = sorted((d for d, r in revisions.items()
                     if d not in kept and r.subject not in revisions),
                    key=lambda d: revisions[d].mtime, reverse=True)
    chosen = set(ranked[:rule.keep] if rule.keep is not None else [])
    if rule.days is not None:
        chosen |= {d for d in ranked if revisions[d].mtime > now - rule.days * 86400}
    chosen |= {d for d, r in revisions.items() if r.mtime > now - grace}
    await keep_with_dependants(chosen)
    gone = sorted((d for d in revisions if d not in kept), key=lambda d: revisions[d].mtime)
    return [Digest.parse(d) for d in gone]


@dataclass
class RetentionReport:
    """What retention found and did in one collection."""

    manifests_deleted: int = 0
    manifests_kept_seen: int = 0


async def apply(driver: Driver, manifests: Manifests, tags: Tags,
                rules: list[RetentionRule], repositories: list[str], grace: float,
                seen: Callable[[Digest], Awaitable[bool]], dry_run: bool,
                report: RetentionReport) -> set[tuple[str, str]]:
    """Delete what the rules let go (`seen` says whether a push named a digest
    during this collection); returns the (repository, digest) pairs let go."""
    now = time.time()
    gone: set[tuple[str, str]] = set()
    for repo in repositories:
        rule = rule_for(rules, repo)
        if rule is None:
            continue
        for digest in await doomed(driver, tags, repo, rule, now, grace):
            if dry_run or await manifests.delete_untagged(repo, digest,
                                                          functools.partial(seen, digest)):
                gone.add((repo, str(digest)))
                report.manifests_deleted += 1
            else:
                report.manifests_kept_seen += 1
    return gone
