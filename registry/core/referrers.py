"""The referrers API: manifests whose `subject` is a given digest."""

from __future__ import annotations

import builtins
import json
from typing import Any

from registry.core.cache import GenerationCache, Generations
from registry.core.grammar import Digest
from registry.core.manifest_format import OCI_INDEX
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound


def _weigh_descriptors(found: list[dict[str, Any]]) -> int:
    # A descriptor with a few annotations is a few hundred bytes as Python objects.
    return 200 + 600 * len(found)


class ReferrersService:
    def __init__(self, driver: Driver, generations: Generations | None = None,
                 shared_store: bool = False) -> None:
        self.driver = driver
        self.generations = generations or Generations()
        # Referrer links change only with manifest pushes and deletes, which bump
        # the generation; off when other machines write to the same store.
        self._cache: GenerationCache[builtins.list[dict[str, Any]]] = GenerationCache(
            self.generations, enabled=not shared_store, max_entries=10_000,
            weigh=_weigh_descriptors)

    async def list(self, repo: str, subject: Digest,
                   artifact_type: str | None = None) -> builtins.list[dict[str, Any]]:
        found: builtins.list[dict[str, Any]] = await self._cache.fetch(
            (repo, subject), lambda: self._read(repo, subject))
        if artifact_type:
            return [d for d in found if d.get("artifactType") == artifact_type]
        return found

    async def _read(self, repo: str, subject: Digest) -> builtins.list[dict[str, Any]]:
        base = paths.referrers_dir(repo, subject)
        try:
            algorithms = await self.driver.list(base)
        except PathNotFound:
            return []
        out: list[dict[str, Any]] = []
        for alg in algorithms:
            try:
                names = await self.driver.list(f"{base}/{alg}")
            except PathNotFound:
                continue
            for name in names:
                referrer = paths.digest_name(alg, name)
                if referrer is None:
                    continue  # a stray file: not a referrer link
                try:
                    raw = await self.driver.get_content(
                        paths.referrer_link(repo, subject, referrer), 1 << 20)
                    desc = json.loads(raw)
                except (PathNotFound, ValueError):
                    continue
                out.append(desc)
        return out

    @staticmethod
    def index(descriptors: builtins.list[dict[str, Any]]) -> dict[str, Any]:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
