"""Keeping the SQLite index in step with storage: the catch-up pass and the rebuild.

The index is fed by hooks after each write this process makes (index/hooks.py).
What it can miss is repaired here, by one pass that diffs the store against the
index and applies the difference:

- at startup, when the index is dirty (a crash left writes unapplied, or the file
  was new, or unusable and replaced);
- whenever a hook event was dropped (queue overflow);
- every `[index] sync_interval` seconds on a store shared with other replicas, whose
  writes this process's hooks never see;
- `registry reindex`: clear, then the same pass over an empty index.

Rooms whose rows the index derives from their own areas of the store (the scan room's
summaries of `_scan/`, registry/scan/summary.py) give the pass a `RoomPass`: run after
the repositories', it brings those rows in step the same way.

A pass costs, per repository, a few listings plus the tag targets; manifests are
read only when new to the index. The protocol answers never depend on it: they
come from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from registry.core.errors import ManifestUnknown
from registry.core.grammar import Digest
from registry.core.manifest_format import parse_manifest
from registry.core.manifests import PARSE_INLINE_MAX
from registry.core.offload import off_loop_if
from registry.core.service import Registry
from registry.index.db import Index
from registry.index.hooks import IndexHooks
from registry.index.records import (
    BlobLinked,
    BlobUnlinked,
    Event,
    ManifestDeleted,
    ManifestDescribe,
    ManifestPut,
    TagDeleted,
    TagSet,
)

log = logging.getLogger("registry.indexing")

APPLY_CHUNK = 500  # events per transaction: hook batches interleave between chunks

# A room's pass over the rows it derives from its own area: applies what differs, and
# returns how many rows it changed.
RoomPass = Callable[[Index], Awaitable[int]]


@dataclass
class IndexStats:
    """What one pass found: repositories seen; manifests, tags and blobs added or
    changed; rows removed; manifests indexed before builds were, now described;
    manifests that could not be read."""

    repositories: int = 0
    manifests: int = 0
    tags: int = 0
    blobs: int = 0
    removed: int = 0
    described: int = 0
    skipped: int = 0
    rooms: int = 0  # rows the rooms' passes changed

    @property
    def changed(self) -> bool:
        return bool(self.manifests or self.tags or self.blobs or self.removed
                    or self.described or self.rooms)


async def read_manifest(reg: Registry, repo: str, digest: Digest) -> ManifestPut | None:
    """The stored manifest `repo@digest` as an index event (revision link, bytes,
    parse, config): the one way the catch-up and the rebuild read a manifest.
    None if it is gone or unreadable (logged)."""
    try:
        # The revision without the body (a get with it would count as a pull), then
        # the bytes, parsed off the loop when large, as a push parses them.
        stored = await reg.manifests.get(repo, str(digest), with_body=False)
        data = await reg.manifests.read_bytes(digest)
        manifest = await off_loop_if(len(data) > PARSE_INLINE_MAX, parse_manifest, data,
                                     stored.media_type)
    except ManifestUnknown:
        return None  # deleted meanwhile
    except Exception as exc:
        log.warning("index: skipping %s@%s: %s", repo, digest, exc)
        return None
    config = await reg.manifests.read_config(manifest)
    artifact = await reg.manifests.read_artifact(manifest)
    return ManifestPut(repo, str(digest), manifest, len(data), None, config, time.time(),
                       artifact)


def _texts(digests: list[Digest]) -> set[str]:
    return {str(d) for d in digests}


ATTEMPTS = 3  # diffs of one repository per pass, while pushes keep changing it


async def _apply(index: Index, events: list[Event]) -> None:
    for start in range(0, len(events), APPLY_CHUNK):
        await index.apply(events[start:start + APPLY_CHUNK])


async def _catch_up_repo(reg: Registry, index: Index, hooks: IndexHooks | None, repo: str,
                         stats: IndexStats) -> bool:
    """Apply the repository's diff, unless this process wrote to it meanwhile: then
    the diff may be older than events already queued (a tag moved back to where it
    was), so it is computed again. False if it never settled."""
    for _ in range(ATTEMPTS):
        before = hooks.writes(repo) if hooks else 0
        attempt = IndexStats()
        events = await _repo_diff(reg, index, repo, attempt)
        for start in range(0, len(events), APPLY_CHUNK):
            if hooks and hooks.writes(repo) != before:
                break
            # No await between the check and the submission to the index thread:
            # events queued after the check are applied after this chunk.
            await index.apply(events[start:start + APPLY_CHUNK])
        else:
            for f in ("manifests", "tags", "blobs", "removed", "described", "skipped"):
                setattr(stats, f, getattr(stats, f) + getattr(attempt, f))
            return True
    return False


async def _repo_diff(reg: Registry, index: Index, repo: str, stats: IndexStats) -> list[Event]:
    events: list[Event] = []
    known_blobs = {b.digest for b in await index.blobs(repo)}
    stored_blobs = _texts(await reg.catalog.layers(repo))
    for digest in sorted(stored_blobs - known_blobs):
        size = await reg.blobs.size(Digest.parse(digest))
        if size is not None:
            events.append(BlobLinked(repo, digest, size))
            stats.blobs += 1
    for digest in sorted(known_blobs - stored_blobs):
        events.append(BlobUnlinked(repo, digest))
        stats.removed += 1

    known = {m.digest for m in await index.manifests(repo)}
    stored = _texts(await reg.catalog.revisions(repo))
    for digest in sorted(stored - known):
        put = await read_manifest(reg, repo, Digest.parse(digest))
        if put is None:
            stats.skipped += 1
            continue
        events.append(put)
        stats.manifests += 1
    for digest in sorted(known - stored):
        events.append(ManifestDeleted(repo, digest))
        stats.removed += 1
    if index.describer is not None:
        # Manifests indexed before the index had builds (a file migrated from an older
        # schema): read and described once, their other rows left as they are.
        for digest in sorted((await index.undescribed(repo)) & stored):
            put = await read_manifest(reg, repo, Digest.parse(digest))
            if put is None:
                stats.skipped += 1
                continue
            events.append(ManifestDescribe(repo, put.digest, put.manifest, put.config,
                                           put.artifact, put.at))
            stats.described += 1

    known_tags = {t.tag: t.digest for t in await index.tags(repo)}
    targets = await reg.tags.targets(repo)
    now = time.time()
    for tag, target in sorted(targets.items()):
        if known_tags.get(tag) != str(target):
            events.append(TagSet(repo, tag, str(target), now))
            stats.tags += 1
    for tag in sorted(set(known_tags) - set(targets)):
        events.append(TagDeleted(repo, tag))
        stats.removed += 1
    return events


async def catch_up(reg: Registry, index: Index, hooks: IndexHooks | None = None,
                   rooms: Sequence[RoomPass] = ()) -> IndexStats:
    """One pass: make the index agree with the store for every repository, then each
    of `rooms` its rows. `hooks`: this process's, whose writes the pass must not undo.
    A repository pushed to throughout the pass is left dirty for the next one."""
    stats = IndexStats()
    repos = await reg.catalog.repositories()
    for repo in repos:
        stats.repositories += 1
        if not await _catch_up_repo(reg, index, hooks, repo, stats):
            log.info("index catch-up: %s kept changing; next pass", repo)
            index.mark_dirty()
    for gone in sorted(set(await index.repositories()) - set(repos)):
        events: list[Event] = [ManifestDeleted(gone, m.digest)
                               for m in await index.manifests(gone)]
        events += [TagDeleted(gone, t.tag) for t in await index.tags(gone)]
        events += [BlobUnlinked(gone, b.digest) for b in await index.blobs(gone)]
        await _apply(index, events)
        stats.removed += 1
    for room in rooms:
        stats.rooms += await room(index)
    return stats


async def rebuild(reg: Registry, index: Index, rooms: Sequence[RoomPass] = ()) -> IndexStats:
    """`registry reindex`: forget everything derived from storage, then read it all."""
    generation = index.dirty_generation
    await index.clear()
    stats = await catch_up(reg, index, rooms=rooms)
    index.mark_clean(generation)
    return stats


async def keep_current(reg: Registry, index: Index, hooks: IndexHooks | None,
                       interval: float, rooms: Sequence[RoomPass] = ()) -> None:
    """Run until cancelled: a catch-up pass whenever the index is dirty (at startup
    after a crash, after a dropped event) and, if `interval` > 0, every `interval`
    seconds (replicas on a shared store). A failed pass is retried later."""
    loop = asyncio.get_running_loop()
    due = loop.time() + interval if interval > 0 else math.inf
    if index.dirty:
        log.info("index %s is dirty (%s): catching up with storage in the background",
                 index.path, index.dirty_reason or "an event was dropped")
    while True:
        if index.dirty or loop.time() >= due:
            generation = index.dirty_generation
            try:
                if hooks is not None:
                    await hooks.flush()  # so the diff sees this process's own writes
                stats = await catch_up(reg, index, hooks, rooms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("index catch-up pass failed: %s", exc)
                await asyncio.sleep(interval if interval > 0 else 30)
                continue
            index.mark_clean(generation)
            if interval > 0:
                due = loop.time() + interval
            if stats.changed:
                log.info("index catch-up: %s", stats)
            if index.dirty:  # busy repositories left for the next pass: not at once
                await asyncio.sleep(1)
        timeout = None if math.isinf(due) else max(0.0, due - loop.time())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # not wait_for: see index/hooks.py
                await index.dirtied.wait()
