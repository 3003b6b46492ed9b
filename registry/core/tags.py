"""Tags: mutable names for manifests, one repository's worth at a time.

A tag is `_manifests/tags/<tag>/current` holding the digest. Lookups, each
repository's sorted tag list and views rendered from it (tag pages) are cached
under the repository's write generation (see core.cache).

A Spack build cache is one repository with tens of thousands of tags, and two
things need every tag's target: deleting a manifest (which deletes its tags) and
the index catch-up. Reading `current` of each tag is one store round trip per
tag, so each tag also has an empty marker `_manifests/tagmap/<tag>.<alg>.<hex>`:
listing that one directory tells every target. A marker is written before
`current` and the previous one removed after, so a tag with exactly one marker
points where it says; a tag with none (written before markers existed) or more
than one (a race, or a crash between the steps) is read from `current`.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Sized
from typing import cast

from registry.core.cache import GenerationCache, Generations
from registry.core.errors import DigestInvalid, ManifestUnknown
from registry.core.grammar import Digest, is_digest_like, is_valid_tag
from registry.core.hooks import Hooks, emit
from registry.core.offload import BIG_LIST, off_loop_if, valid_sorted
from registry.core.protocols import View
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound


def _weigh_tags(tags: list[str]) -> int:
    # A short str is ~50 bytes of object header plus its characters, plus the list slot.
    return 64 + sum(58 + len(t) for t in tags)


class TagStore:
    """The tags of every repository: resolve, list, set, delete, and who points where."""

    def __init__(self, driver: Driver, hooks: Hooks, generations: Generations | None = None,
                 shared_store: bool = False, ttl: float = 0.0) -> None:
        self.driver = driver
        self.hooks = hooks
        self.generations = generations or Generations()
        # A store shared with other machines: no exact invalidation is possible, so
        # tags are cached only for a configured TTL.
        enabled = not shared_store or ttl > 0
        ttl_or_none = ttl if shared_store else None
        self._tags: GenerationCache[Digest] = GenerationCache(
            self.generations, enabled=enabled, ttl=ttl_or_none)
        # Whole tag lists: 100,000 tags are ~7 MB as Python strings, so the bound is
        # in bytes, not just in lists.
        self._lists: GenerationCache[builtins.list[str]] = GenerationCache(
            self.generations, enabled=enabled, ttl=ttl_or_none, max_entries=1_000,
            max_weight=64 << 20, weigh=_weigh_tags)
        # Every tag's target, for deletes and the index catch-up.
        self._targets: GenerationCache[dict[str, Digest]] = GenerationCache(
            self.generations, enabled=enabled, ttl=ttl_or_none, max_entries=1_000,
            max_weight=64 << 20, weigh=lambda t: 64 + 250 * len(t))
        # Things derived from a tag list (rendered pages), invalidated with it.
        self._views: GenerationCache[Sized] = GenerationCache(
            self.generations, enabled=enabled, ttl=ttl_or_none, max_entries=4_096,
            max_weight=32 << 20, weigh=len)

    async def resolve(self, repo: str, reference: str) -> Digest:
        """Digest for a tag or digest reference; MANIFEST_UNKNOWN if there is none.

        An invalid tag is simply a name nothing can have, so it is unknown
        (404); a malformed digest is a malformed request (400)."""
        if is_digest_like(reference):
            return Digest.parse(reference)
        if not is_valid_tag(reference):
            raise ManifestUnknown(detail={"reference": reference[:128]})
        return await self._tags.fetch((repo, reference), lambda: self._read(repo, reference))

    async def _read(self, repo: str, tag: str) -> Digest:
        try:
            raw = await self.driver.get_content(paths.tag_current(repo, tag), 512)
            return Digest.parse(raw.decode().strip())
        except (PathNotFound, DigestInvalid, UnicodeDecodeError):
            raise ManifestUnknown(detail={"tag": tag}) from None

    async def set(self, repo: str, tag: str, digest: Digest) -> None:
        """Point `tag` at `digest` (the caller has checked the tag's grammar)."""
        previous = await self._read_or_none(repo, tag)
        marker = paths.tag_map_entry(repo, tag, digest)
        if marker is not None and previous != digest:
            await self.driver.put_content(marker, b"")
        await self.driver.put_content(paths.tag_current(repo, tag), str(digest).encode())
        self.generations.bump(repo)
        if previous is not None and previous != digest:
            await self._drop_marker(repo, tag, previous)

    async def delete(self, repo: str, tag: str) -> None:
        if not is_valid_tag(tag):
            raise ManifestUnknown(detail={"tag": tag[:128]})
        previous = await self._read_or_none(repo, tag)
        try:
            await self.driver.delete(paths.tag_dir(repo, tag))
        except PathNotFound:
            raise ManifestUnknown(detail={"tag": tag}) from None
        self.generations.bump(repo)
        if previous is not None:
            await self._drop_marker(repo, tag, previous)
        await emit(self.hooks.tag_deleted(repo, tag))

    async def _read_or_none(self, repo: str, tag: str) -> Digest | None:
        try:
            return await self._read(repo, tag)
        except ManifestUnknown:
            return None

    async def _drop_marker(self, repo: str, tag: str, digest: Digest) -> None:
        marker = paths.tag_map_entry(repo, tag, digest)
        if marker is not None:
            with contextlib.suppress(PathNotFound):
                await self.driver.delete(marker)

    async def list(self, repo: str) -> list[str]:
        """All tags of the repository, sorted; empty if it has none.

        Cached like single tags, so paging through a large repository lists
        its directory once rather than once per page."""
        return await self._lists.fetch(repo, lambda: self._read_list(repo))

    async def _read_list(self, repo: str) -> builtins.list[str]:
        try:
            names = await self.driver.list(paths.tags_dir(repo))
        except PathNotFound:
            return []
        return await valid_sorted(names, is_valid_tag)

    async def view(self, repo: str, key: Hashable,
                   build: Callable[[builtins.list[str]], Awaitable[View]]) -> View:
        """`build(tags)` for the repository's sorted tags, cached under (repo, key)
        with the same invalidation as the tag list itself. A client paging through
        10,000 tags then costs one lookup per page, not a slice and a JSON encoding."""
        cached = self._views.get((repo, key))
        if cached is not None:
            # A key names one builder (the Protocol's contract): what it holds is a View.
            return cast(View, cached)
        gen = self._views.generation(repo)  # before reading, as GenerationCache requires
        tags = await self.list(repo)
        view = await build(tags)
        # As old as the list it was built from: with a TTL (s3 replicas) a page is
        # never staler than `tag_cache_ms`, however late it was first rendered.
        self._views.put((repo, key), view, gen, stamp=self._lists.stamp(repo))
        return view

    async def targets(self, repo: str) -> dict[str, Digest]:
        """Every tag of the repository with the digest it points at (tags that
        vanish or are unreadable meanwhile are left out): two listings, plus one
        read per tag whose marker is missing or ambiguous."""
        return await self._targets.fetch(repo, lambda: self._read_targets(repo))

    async def _read_targets(self, repo: str) -> dict[str, Digest]:
        tags = await self.list(repo)
        marked = await self._markers(repo)
        out: dict[str, Digest] = {}
        for tag in tags:
            found = marked.get(tag)
            if found is not None and len(found) == 1:
                out[tag] = next(iter(found))
                continue
            with contextlib.suppress(ManifestUnknown):  # deleted meanwhile
                out[tag] = await self._read(repo, tag)
        return out

    async def _markers(self, repo: str) -> dict[str, builtins.set[Digest]]:
        try:
            names = await self.driver.list(paths.tag_map_dir(repo))
        except PathNotFound:
            return {}

        def parse() -> dict[str, set[Digest]]:
            found: dict[str, set[Digest]] = {}
            for name in names:
                parsed = paths.parse_tag_map_entry(name)
                if parsed is None:
                    continue
                try:
                    digest = Digest.parse(f"{parsed[1]}:{parsed[2]}")
                except DigestInvalid:
                    continue
                found.setdefault(parsed[0], set()).add(digest)
            return found

        return await off_loop_if(len(names) > BIG_LIST, parse)

    async def pointing_at(self, repo: str, digest: Digest) -> builtins.list[str]:
        """The tags that point at `digest`."""
        return sorted(t for t, d in (await self.targets(repo)).items() if d == digest)
