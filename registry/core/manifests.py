"""Manifest service: put, get and delete manifests, and the tags that name them."""

from __future__ import annotations

import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from registry.core.artifact_checks import NO_ARTIFACT_CHECKS, ArtifactCheck
from registry.core.cache import GenerationCache, Generations, fixed_weight
from registry.core.catalog import digests_under
from registry.core.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
)
from registry.core.grammar import Digest, is_digest_like, is_valid_tag
from registry.core.hooks import Hooks, emit
from registry.core.manifest_format import Descriptor, Manifest, parse_manifest
from registry.core.offload import off_loop_if
from registry.core.protocols import Blobs, Tags
from registry.core.types import StoredManifest
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound, StorageError

log = logging.getLogger(__name__)

# A config blob is read (bounded) at push time so the index can record platforms.
CONFIG_READ_MAX = 1 << 20


# Manifests larger than this are parsed and validated on a worker thread: a hostile
# 4 MiB manifest with 10,000 descriptors takes ~0.2 s, the event loop's to lose.
PARSE_INLINE_MAX = 64 << 10


async def _parse(data: bytes, media_type: str | None) -> Manifest:
    return await off_loop_if(len(data) > PARSE_INLINE_MAX, parse_manifest, data, media_type)


class _ByteLRU:
    """Manifest bytes by digest. Content-addressed, so never stale: safe to share."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes // 8 or key in self._items:
            return
        self._items[key] = data
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= len(old)


def _served_weight(stored: StoredManifest) -> int:
    return 300 + (len(stored.data) if stored.data is not None else 0)


class ManifestService:
    """Manifests of every repository: validated on put, served as pushed, deleted
    with their tags and referrer links."""

    def __init__(self, driver: Driver, blobs: Blobs, tags: Tags, hooks: Hooks,
                 max_bytes: int = 4 << 20, cache_bytes: int = 64 << 20,
                 generations: Generations | None = None, shared_store: bool = False,
                 artifact_check: ArtifactCheck = NO_ARTIFACT_CHECKS) -> None:
        self.driver = driver
        self.blobs = blobs
        self.tags = tags
        self.hooks = hooks
        self.max_bytes = max_bytes
        # The documents of artifacts a room understands, checked before a push is
        # stored (core/artifact_checks.py).
        self.artifact_check = artifact_check
        self._cache = _ByteLRU(cache_bytes)
        self.generations = generations or Generations()
        # A store shared with other machines: no exact invalidation is possible, so
        # revision links are not cached there.
        self._revisions: GenerationCache[paths.RevisionLink] = GenerationCache(
            self.generations, enabled=not shared_store, weigh=fixed_weight(600))
        # What `get` answered for (repo, reference, with body): the tag, the revision
        # link and the bytes in one lookup, valid while the repository's generation
        # is unchanged (the hot path of every pull). Off where the tag and revision
        # caches cannot be exact; the bytes are those of the byte cache, not a copy.
        self._served: GenerationCache[StoredManifest] = GenerationCache(
            self.generations, enabled=not shared_store, max_entries=10_000,
            max_weight=cache_bytes, weigh=_served_weight)

    # -- references ----------------------------------------------------------

    async def _revision(self, repo: str, digest: Digest) -> paths.RevisionLink:
        return await self._revisions.fetch((repo, digest),
                                           lambda: self._read_revision(repo, digest))

    async def _read_revision(self, repo: str, digest: Digest) -> paths.RevisionLink:
        try:
            raw = await self.driver.get_content(paths.revision_link(repo, digest),
                                                paths.REVISION_LINK_MAX)
            return paths.RevisionLink.parse(raw)
        except PathNotFound:
            raise ManifestUnknown(detail={"digest": str(digest)}) from None
        except ValueError:
            raise StorageError(f"corrupt revision link for {digest}") from None

    async def exists(self, repo: str, digest: Digest) -> bool:
        try:
            await self.driver.stat(paths.revision_link(repo, digest))
            return True
        except PathNotFound:
            return False

    # -- read ----------------------------------------------------------------

    async def get(self, repo: str, reference: str, with_body: bool = True) -> StoredManifest:
        key = (repo, reference, with_body)
        stored = self._served.get(key)
        if stored is None:
            gen = self._served.generation(key)  # before reading, as the caches need
            stored = await self._lookup(repo, reference, with_body)
            self._served.put(key, stored, gen)
        if with_body:
            self.hooks.manifest_pulled(repo, stored.digest)
        return stored

    async def _lookup(self, repo: str, reference: str, with_body: bool) -> StoredManifest:
        digest = await self.tags.resolve(repo, reference)
        rev = await self._revision(repo, digest)
        media_type, size = rev.media_type, rev.size
        if not with_body:
            return StoredManifest(digest, media_type, size)
        return StoredManifest(digest, media_type, size, await self.read_bytes(digest))

    async def read_bytes(self, digest: Digest) -> bytes:
        key = str(digest)
        data = self._cache.get(key)
        if data is None:
            data = await self.blobs.read(digest, self.max_bytes)
            self._cache.put(key, data)
        return data

    async def parsed(self, digest: Digest, media_type: str) -> Manifest:
        return await _parse(await self.read_bytes(digest), media_type)

    # -- write ---------------------------------------------------------------

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]:
        tag: str | None = None
        if is_digest_like(reference):
            wanted = Digest.parse(reference)
            digest = Digest.of(data, wanted.algorithm)
            if digest != wanted:
                raise DigestInvalid("manifest digest does not match its content",
                                    {"expected": str(wanted), "actual": str(digest)})
        else:
            if not is_valid_tag(reference):
                raise ManifestInvalid("invalid tag", {"tag": reference[:128]})
            tag = reference
            digest = Digest.of(data)
        manifest = await _parse(data, content_type)
        await self._check_references(repo, manifest)
        artifact = await self._check_artifact(manifest)  # refuses before any write
        config = await self.read_config(manifest)
        await self._store(repo, digest, data, manifest, tag, config, artifact)
        return digest, manifest

    async def mirror(self, repo: str, digest: Digest, data: bytes,
                     media_type: str | None, tag: str | None = None) -> Manifest:
        """Store a manifest copied from another registry, whose digest the caller has
        verified: written as `put` writes it (bytes, revision link, referrer link,
        tag, hooks) but without requiring its blobs and child manifests to be here,
        since a node cache fetches those lazily, when they are pulled."""
        if Digest.of(data, digest.algorithm) != digest:
            raise DigestInvalid("manifest digest does not match its content",
                                {"expected": str(digest)})
        manifest = await _parse(data, media_type)
        await self._store(repo, digest, data, manifest, tag, None)
        return manifest

    async def _store(self, repo: str, digest: Digest, data: bytes, manifest: Manifest,
                     tag: str | None, config: bytes | None,
                     artifact: str | None = None) -> None:
        await self.blobs.put_small(data, digest)
        self._cache.put(str(digest), data)
        # The subject is recorded so that a delete never needs the manifest's bytes.
        subject = str(manifest.subject.digest) if manifest.subject is not None else None
        link = paths.RevisionLink(str(digest), manifest.media_type, len(data), subject)
        await self.driver.put_content(paths.revision_link(repo, digest), link.to_json())
        if manifest.subject is not None:
            # The link carries the referrer's descriptor, so listing referrers
            # never has to open the manifests themselves.
            desc = Descriptor(manifest.media_type, digest, len(data),
                              manifest.effective_artifact_type, manifest.annotations or None)
            await self.driver.put_content(
                paths.referrer_link(repo, manifest.subject.digest, digest),
                json.dumps(desc.to_json()).encode())
        if tag is not None:
            await self.tags.set(repo, tag, digest)
        self.generations.bump(repo)
        await emit(self.hooks.manifest_put(repo, digest, manifest, len(data), tag, config,
                                           artifact))

    async def _check_references(self, repo: str, manifest: Manifest) -> None:
        # Each distinct blob is asked about once: a manifest may name one layer
        # thousands of times, and on a shared store each question is a round trip.
        sizes: dict[Digest, int | None] = {}
        for desc in manifest.blobs:
            if desc.urls:
                continue  # non-distributable layer: the bytes live elsewhere by design
            if desc.digest not in sizes:
                linked = await self.blobs.linked(repo, desc.digest)
                sizes[desc.digest] = await self.blobs.size(desc.digest) if linked else None
            size = sizes[desc.digest]
            if size is None:
                raise ManifestBlobUnknown(detail={"digest": str(desc.digest)})
            if size != desc.size:
                raise ManifestInvalid("descriptor size does not match the blob",
                                      {"digest": str(desc.digest), "size": desc.size,
                                       "stored": size})
        for desc in manifest.manifests:
            await self.blobs.seen(desc.digest)  # retention must not take it meanwhile
            if not await self.exists(repo, desc.digest):
                raise ManifestBlobUnknown("manifest references a manifest unknown to the "
                                          "repository", {"digest": str(desc.digest)})

    async def read_config(self, manifest: Manifest, repo: str | None = None) -> bytes | None:
        """The config blob, if small and stored here (whatever `repo`), for platform
        indexing by the hooks and for describing a build (arch.describe)."""
        if manifest.config is None or manifest.config.size > CONFIG_READ_MAX:
            return None
        try:
            return await self.blobs.read(manifest.config.digest, CONFIG_READ_MAX)
        except Exception:
            return None

    async def _check_artifact(self, manifest: Manifest) -> str | None:
        """The injected artifact check (core/artifact_checks.py) on a pushed
        manifest whose blobs are known to be here: None when it checks nothing of
        this manifest, else what it records; ManifestInvalid when it refuses."""
        check = self.artifact_check
        try:
            desc = check.document(manifest)
        except ValueError as exc:
            raise ManifestInvalid(str(exc)[:300]) from None
        if desc is None:
            return None
        if desc.size > check.max_bytes:
            raise ManifestInvalid(f"the {desc.media_type} layer is {desc.size} bytes, more "
                                  f"than the {check.max_bytes} accepted",
                                  {"digest": str(desc.digest)})
        data = await self.blobs.read(desc.digest, check.max_bytes)
        try:
            return await off_loop_if(len(data) > PARSE_INLINE_MAX // 4, check.check,
                                     manifest, data)
        except ValueError as exc:
            raise ManifestInvalid(f"invalid {desc.media_type} layer: {str(exc)[:300]}",
                                  {"digest": str(desc.digest)}) from None

    async def read_artifact(self, manifest: Manifest) -> str | None:
        """What the artifact check records for a stored manifest (the catch-up and
        the rebuild index it as a push would); None when it checks nothing of it or
        refuses it (stored before the check existed: logged)."""
        try:
            return await self._check_artifact(manifest)
        except Exception as exc:
            log.warning("artifact document not indexed: %s", exc)
            return None

    # -- delete --------------------------------------------------------------

    async def delete(self, repo: str, reference: str) -> None:
        if not is_digest_like(reference):
            await self.tags.delete(repo, reference)
            return
        digest = Digest.parse(reference)
        rev = await self._revision(repo, digest)
        # Before anything is deleted: a store that cannot answer fails the delete
        # whole, rather than leave a referrer link behind the manifest.
        subject = await self._subject_of(repo, digest, rev)
        try:
            await self.driver.delete(paths.revision_link(repo, digest))
        except PathNotFound:
            raise ManifestUnknown(detail={"digest": str(digest)}) from None
        try:
            if subject is not None:
                with contextlib.suppress(PathNotFound):
                    await self.driver.delete(paths.referrer_link(repo, subject, digest))
        finally:
            self.generations.bump(repo)  # whatever happens next, caches must not outlive this
        for tag in await self.tags.pointing_at(repo, digest):
            with contextlib.suppress(ManifestUnknown):  # deleted meanwhile
                await self.tags.delete(repo, tag)
        await emit(self.hooks.manifest_deleted(repo, digest))

    async def delete_untagged(self, repo: str, digest: Digest,
                              named: Callable[[], Awaitable[bool]]) -> bool:
        """Retention (core/retention.py): delete an untagged manifest unless a tag
        points at it or `named()` says a push named it during the collection, asked
        before and after the revision link goes (the link is put back if the answer
        changed). True when it went."""
        if await self.tags.pointing_at(repo, digest) or await named():
            return False
        path = paths.revision_link(repo, digest)
        try:
            link = await self.driver.get_content(path, paths.REVISION_LINK_MAX)
        except PathNotFound:
            return False
        try:
            rev = paths.RevisionLink.parse(link)
            subject = await self._subject_of(repo, digest, rev)  # as delete finds it
        except (ValueError, DigestInvalid):
            subject = None  # an unreadable link: no referrer link to go with it
        try:
            await self.driver.delete(path)
        except PathNotFound:
            return False
        self.generations.bump(repo)
        if await named() or await self.tags.pointing_at(repo, digest):
            # Pushed meanwhile: it stays. The repository's own revision link, put back
            # as it was a moment ago: no blob enters a repository here, so the mount
            # rule (core/mounts.py) has nothing to decide.
            await self.driver.put_content(path, link)
            self.generations.bump(repo)
            return False
        if subject is not None:
            with contextlib.suppress(PathNotFound):
                await self.driver.delete(paths.referrer_link(repo, subject, digest))
        await emit(self.hooks.manifest_deleted(repo, digest))
        return True

    async def _subject_of(self, repo: str, digest: Digest,
                          rev: paths.RevisionLink) -> Digest | None:
        """The subject a manifest in `repo` refers to, if any: from its revision link,
        or, for links written before subjects were recorded there, from its bytes,
        or, when those cannot be read, from the referrers tree itself."""
        if rev.subject_known:
            return Digest.parse(rev.subject) if rev.subject else None
        try:
            manifest = await self.parsed(digest, rev.media_type)
        except (BlobUnknown, ManifestInvalid):
            return await self._find_subject(repo, digest)
        return manifest.subject.digest if manifest.subject is not None else None

    async def _find_subject(self, repo: str, referrer: Digest) -> Digest | None:
        subjects = await digests_under(self.driver,
                                       lambda alg: paths.referrer_subjects_dir(repo, alg))
        for subject in subjects:
            try:
                await self.driver.stat(paths.referrer_link(repo, subject, referrer))
            except PathNotFound:
                continue
            return subject
        return None
