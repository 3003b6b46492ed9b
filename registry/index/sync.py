"""Replica index catch-up: bring this replica's SQLite index up to date with the store.

With several replicas on one S3 bucket, each keeps its own index, fed by the
hooks of the writes *it* serves. Writes made by other replicas reach it here:
every `[index] sync_interval` seconds a background task lists the store
(repositories, their tags, manifests and linked blobs) and applies the
difference to the index. So a replica's index lags other replicas' writes by
at most one interval plus one pass; the protocol answers never lag, since they
come from the store, not the index.

A pass costs, per repository, a few LIST requests plus one small GET per tag
(tags are mutable); manifests are read only when new to this replica.
`registry reindex` remains the way to rebuild an index from nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from registry.core.grammar import Digest
from registry.core.manifest_format import parse_manifest
from registry.core.service import Registry
from registry.index.db import Index
from registry.index.rebuild import digests_in
from registry.storage import paths
from registry.storage.driver import PathNotFound

log = logging.getLogger("registry.index.sync")


@dataclass
class SyncStats:
    repositories: int = 0
    added: int = 0
    removed: int = 0
    retagged: int = 0


async def _digests(reg: Registry, directory_of: Callable[[str], str]) -> set[str]:
    return {str(d) for d in await digests_in(reg, directory_of)}


async def _rows(index: Index, sql: str) -> dict[str, set[tuple[str, ...]]]:
    by_repo: dict[str, set[tuple[str, ...]]] = {}
    for row in await index.query(sql):
        values = tuple(row.values())
        by_repo.setdefault(values[0], set()).add(values[1:])
    return by_repo


async def sync_once(reg: Registry, index: Index) -> SyncStats:
    """One pass: make the index agree with the store for every repository."""
    stats = SyncStats()
    manifests = await _rows(index, "SELECT repo, digest FROM manifests")
    tags = await _rows(index, "SELECT repo, tag, digest FROM tags")
    blobs = await _rows(index, "SELECT repo, digest FROM blobs")
    repos = await reg.catalog.repositories()
    for repo in repos:
        stats.repositories += 1
        await _sync_repo(reg, index, repo, stats, {d for (d,) in manifests.get(repo, set())},
                         dict(tags.get(repo, set())), {d for (d,) in blobs.get(repo, set())})
    for gone in (set(manifests) | set(tags) | set(blobs)) - set(repos):
        for (digest,) in manifests.get(gone, set()):
            await index.delete_manifest(gone, digest)
        for tag, _ in tags.get(gone, set()):
            await index.delete_tag(gone, tag)
        for (digest,) in blobs.get(gone, set()):
            await index.unlink_blob(gone, digest)
        stats.removed += 1
    return stats


async def _sync_repo(reg: Registry, index: Index, repo: str, stats: SyncStats,
                     known_manifests: set[str], known_tags: dict[str, str],
                     known_blobs: set[str]) -> None:
    stored_blobs = await _digests(reg, lambda alg: paths.layers_dir(repo, alg))
    for digest in stored_blobs - known_blobs:
        size = await reg.blobs.size(Digest.parse(digest))
        if size is not None:
            await index.link_blob(repo, digest, size)
            stats.added += 1
    for digest in known_blobs - stored_blobs:
        await index.unlink_blob(repo, digest)
        stats.removed += 1

    stored = await _digests(reg, lambda alg: paths.revisions_dir(repo, alg))
    for digest in stored - known_manifests:
        if await _record_manifest(reg, index, repo, Digest.parse(digest)):
            stats.added += 1
    for digest in known_manifests - stored:
        await index.delete_manifest(repo, digest)
        stats.removed += 1

    current: dict[str, str] = {}
    for tag in await reg.tags.list(repo):
        try:
            current[tag] = str(await reg.tags.resolve(repo, tag))
        except Exception:  # deleted meanwhile, or unreadable: next pass
            continue
    for tag, digest in current.items():
        if known_tags.get(tag) != digest:
            await index.set_tag(repo, tag, digest)
            stats.retagged += 1
    for tag in set(known_tags) - set(current):
        await index.delete_tag(repo, tag)
        stats.removed += 1


async def _record_manifest(reg: Registry, index: Index, repo: str, digest: Digest) -> bool:
    try:
        rev = json.loads(await reg.driver.get_content(paths.revision_link(repo, digest), 4096))
        data = await reg.manifests.read_bytes(digest)
        manifest = parse_manifest(data, rev["mediaType"])
    except PathNotFound:
        return False
    except Exception as exc:
        log.warning("index sync: skipping %s@%s: %s", repo, digest, exc)
        return False
    config = await reg.manifests.read_config(manifest)
    await index.record_manifest(repo, digest, manifest, len(data), None, config)
    return True


async def run(reg: Registry, index: Index, interval: float) -> None:
    """Sync every `interval` seconds until cancelled; failures wait for the next pass."""
    while True:
        await asyncio.sleep(interval)
        try:
            stats = await sync_once(reg, index)
            if stats.added or stats.removed or stats.retagged:
                log.info("index sync: %s", stats)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("index sync pass failed: %s", exc)
