"""The referrers API: manifests whose `subject` is a given digest."""

from __future__ import annotations

import json

from registry.core.grammar import Digest
from registry.core.manifest_format import OCI_INDEX
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound


class ReferrersService:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def list(self, repo: str, subject: Digest,
                   artifact_type: str | None = None) -> list[dict]:
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
                if artifact_type and desc.get("artifactType") != artifact_type:
                    continue
                out.append(desc)
        return out

    @staticmethod
    def index(descriptors: list[dict]) -> dict:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
