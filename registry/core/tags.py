"""Tags: mutable names for manifests, one repository's worth at a time.

A tag is `_manifests/tags/<tag>/current` holding the digest. Lookups, each
repository's sorted tag list and views rendered from it (tag pages) are cached
under the repository's write generation (see core.cache).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sized

from registry.core.cache import GenerationCache, Generations
from registry.core.errors import DigestInvalid, ManifestUnknown
from registry.core.grammar import Digest, is_digest_like, is_valid_tag
from registry.core.hooks import Hooks, emit
from registry.core.offload import valid_sorted
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
        self._tags = GenerationCache(self.generations, enabled=enabled, ttl=ttl_or_none)
        # Whole tag lists: 100,000 tags are ~7 MB as Python strings, so the bound is
        # in bytes, not just in lists.
        self._lists = GenerationCache(self.generations, enabled=enabled, ttl=ttl_or_none,
                                      max_entries=1_000, max_weight=64 << 20,
                                      weigh=_weigh_tags)
        # Things derived from a tag list (rendered pages), invalidated with it.
        self._views = GenerationCache(self.generations, enabled=enabled, ttl=ttl_or_none,
                                      max_entries=4_096, max_weight=32 << 20, weigh=len)

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
        await self.driver.put_content(paths.tag_current(repo, tag), str(digest).encode())
        self.generations.bump(repo)

    async def delete(self, repo: str, tag: str) -> None:
        if not is_valid_tag(tag):
            raise ManifestUnknown(detail={"tag": tag[:128]})
        try:
            await self.driver.delete(paths.tag_dir(repo, tag))
        except PathNotFound:
            raise ManifestUnknown(detail={"tag": tag}) from None
        self.generations.bump(repo)
        await emit(self.hooks.tag_deleted(repo, tag))

    async def list(self, repo: str) -> list[str]:
        """All tags of the repository, sorted; empty if it has none.

        Cached like single tags, so paging through a large repository lists
        its directory once rather than once per page."""
        return await self._lists.fetch(repo, lambda: self._read_list(repo))

    async def _read_list(self, repo: str) -> list[str]:
        try:
            names = await self.driver.list(paths.tags_dir(repo))
        except PathNotFound:
            return []
        return await valid_sorted(names, is_valid_tag)

    async def view(self, repo: str, key: Hashable,
                   build: Callable[[list[str]], Awaitable[Sized]]) -> Sized:
        """`build(tags)` for the repository's sorted tags, cached under (repo, key)
        with the same invalidation as the tag list itself. A client paging through
        10,000 tags then costs one lookup per page, not a slice and a JSON encoding."""
        cached = self._views.get((repo, key))
        if cached is not None:
            return cached
        gen = self._views.generation(repo)  # before reading, as GenerationCache requires
        tags = await self.list(repo)
        view = await build(tags)
        # As old as the list it was built from: with a TTL (s3 replicas) a page is
        # never staler than `tag_cache_ms`, however late it was first rendered.
        self._views.put((repo, key), view, gen, stamp=self._lists.stamp(repo))
        return view

    async def targets(self, repo: str) -> dict[str, Digest]:
        """Every tag of the repository with the digest it points at (tags that
        vanish or are unreadable meanwhile are left out)."""
        out: dict[str, Digest] = {}
        for tag in await self.list(repo):
            try:
                out[tag] = await self._read(repo, tag)
            except ManifestUnknown:
                continue
        return out

    async def pointing_at(self, repo: str, digest: Digest) -> list[str]:
        """The tags that point at `digest`."""
        return sorted(t for t, d in (await self.targets(repo)).items() if d == digest)
