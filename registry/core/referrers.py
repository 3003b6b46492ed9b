"""The referrers API: manifests whose `subject` is a given digest."""

from __future__ import annotations

import json

from registry.core.cache import Generation, GenerationCache
from registry.core.grammar import Digest
from registry.core.manifest_format import OCI_INDEX
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound


class ReferrersService:
    def __init__(self, driver: Driver, generation: Generation | None = None,
                 shared_store: bool = False) -> None:
        self.driver = driver
        self.generation = generation or Generation()
        # Referrer links change only with manifest pushes and deletes, which bump
        # the generation; off when other machines write to the same store.
        self._cache = GenerationCache(self.generation, enabled=not shared_store,
                                      max_entries=10_000)

    async def list(self, repo: str, subject: Digest,
                   artifact_type: str | None = None) -> list[dict]:
        found = await self._cache.fetch((repo, subject), lambda: self._read(repo, subject))
        if artifact_type:
            return [d for d in found if d.get("artifactType") == artifact_type]
        return found

    async def _read(self, repo: str, subject: Digest) -> list[dict]:
        base = paths.referrers_dir(repo, subject)
        try:
            algorithms = await self.driver.list(base)
        except PathNotFound:
            return []
        out: list[dict] = []
        for alg in algorithms:
            try:
                names = await self.driver.list(f"{base}/{alg}")
            except PathNotFound:
                continue
            for name in names:
                try:
                    raw = await self.driver.get_content(f"{base}/{alg}/{name}", 1 << 20)
                    desc = json.loads(raw)
                except (PathNotFound, ValueError):
                    continue
                out.append(desc)
        return out

    @staticmethod
    def index(descriptors: list[dict]) -> dict:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
