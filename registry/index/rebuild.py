"""`registry reindex`: rebuild the SQLite index from the storage tree alone."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from registry.core.grammar import ALGORITHMS, Digest, DigestInvalid
from registry.core.manifest_format import parse_manifest
from registry.core.service import Registry
from registry.index.db import Index
from registry.storage import paths
from registry.storage.driver import PathNotFound

log = logging.getLogger(__name__)


@dataclass
class RebuildStats:
    repositories: int = 0
    manifests: int = 0
    tags: int = 0
    blobs: int = 0
    skipped: int = 0


async def digests_in(reg: Registry, directory_of: Callable[[str], str]) -> list[Digest]:
    """Digests named by the entries of `directory_of(algorithm)` for each algorithm
    (the layout of _layers/ and _manifests/revisions/); stray names are skipped."""
    out = []
    for alg in ALGORITHMS:
        try:
            names = await reg.driver.list(directory_of(alg))
        except PathNotFound:
            continue
        for name in names:
            try:
                out.append(Digest.parse(f"{alg}:{name}"))
            except DigestInvalid:
                continue
    return out


async def rebuild(reg: Registry, index: Index) -> RebuildStats:
    stats = RebuildStats()
    await index.clear()
    for repo in await reg.catalog.repositories():
        stats.repositories += 1
        for digest in await digests_in(reg, lambda alg, r=repo: paths.layers_dir(r, alg)):
            size = await reg.blobs.size(digest)
            if size is not None:
                await index.link_blob(repo, str(digest), size)
                stats.blobs += 1
        for digest in await digests_in(reg, lambda alg, r=repo: paths.revisions_dir(r, alg)):
            try:
                rev = json.loads(await reg.driver.get_content(paths.revision_link(repo, digest)))
                data = await reg.manifests.read_bytes(digest)
                manifest = parse_manifest(data, rev["mediaType"])
            except Exception as exc:
                log.warning("skipping %s@%s: %s", repo, digest, exc)
                stats.skipped += 1
                continue
            config = await reg.manifests.read_config(manifest)
            await index.record_manifest(repo, digest, manifest, len(data), None, config)
            stats.manifests += 1
        for tag in await reg.tags.list(repo):
            try:
                digest = await reg.tags.resolve(repo, tag)
            except Exception:
                stats.skipped += 1
                continue
            await index.set_tag(repo, tag, str(digest))
            stats.tags += 1
    return stats
