"""Scan results in the store (`_scan/results/<alg>/<hex>.json`, through core's
`ScanArea`), keyed by manifest digest: a manifest's bytes name its layers, so one
scan holds for every repository that has it. A result's absence is the to-do."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from registry.core.areas import Area
from registry.core.grammar import Digest
from registry.scan.inventory import Result

# What a result says found it: a later scanner that finds more can tell old results.
SCANNER = "registry-scan/1"
MAX_RESULT = 256 << 20


class ScanResults:
    """Read and write each manifest's scan result."""

    def __init__(self, area: Area) -> None:
        self.area = area

    @staticmethod
    def _name(digest: Digest) -> str:
        return f"{digest.algorithm}/{digest.hex}.json"

    async def get(self, digest: Digest) -> dict[str, Any] | None:
        """The stored result, or None when the manifest was not scanned yet."""
        raw = await self.area.read(self._name(digest), MAX_RESULT)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return None  # not ours (a crash cannot leave half a file: writes are atomic)
        return doc if isinstance(doc, dict) else None

    async def has(self, digest: Digest) -> bool:
        return await self.get(digest) is not None

    @staticmethod
    def document(digest: Digest, repo: str, result: Result) -> dict[str, Any]:
        """The stored form of `result`, the scan of `digest` (first found in `repo`)."""
        return {"digest": str(digest), "repository": repo, "scanner": SCANNER,
                "scanned_at": time.time(), **result.to_json()}

    async def write(self, digest: Digest, doc: dict[str, Any]) -> None:
        """Store `doc` as the result of `digest` (replacing one, atomically)."""
        await self.area.write(self._name(digest), json.dumps(doc, separators=(",", ":"))
                              .encode())

    async def put(self, digest: Digest, repo: str, result: Result) -> dict[str, Any]:
        """Store `result` as the scan of `digest` (first found in `repo`)."""
        doc = self.document(digest, repo, result)
        await self.write(digest, doc)
        return doc

    async def delete(self, digest: Digest) -> bool:
        """Remove the result of `digest`; False when there was none."""
        return await self.area.delete(self._name(digest))

    async def digests(self) -> AsyncIterator[Digest]:
        """Every manifest with a stored result."""
        async for digest, _ in self.files():
            yield digest

    async def files(self) -> AsyncIterator[tuple[Digest, float]]:
        """Every manifest with a stored result, and when the result was last written."""
        async for file in self.area.walk():
            alg, _, name = file.name.partition("/")
            if name.endswith(".json"):
                try:
                    yield Digest.parse(f"{alg}:{name[:-5]}"), file.mtime
                except ValueError:
                    continue  # not a result of ours
