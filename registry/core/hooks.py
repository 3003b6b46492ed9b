"""Events the domain emits after each storage write.

The SQLite index (and later the scanner, signer and node cache) subscribe here,
as zot's meta hooks do. A hook failure is logged and never fails the request:
storage is the truth and the index can always be rebuilt from it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Protocol

from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest

log = logging.getLogger(__name__)


class Hooks(Protocol):
    # `artifact`: what the injected artifact check (core/artifact_checks.py) records
    # of the document the manifest carries, if it checked one.
    async def manifest_put(self, repo: str, digest: Digest, manifest: Manifest,
                           size: int, tag: str | None, config: bytes | None,
                           artifact: str | None = None) -> None: ...

    async def manifest_deleted(self, repo: str, digest: Digest) -> None: ...

    async def tag_deleted(self, repo: str, tag: str) -> None: ...

    async def blob_linked(self, repo: str, digest: Digest, size: int) -> None: ...

    async def blob_unlinked(self, repo: str, digest: Digest) -> None: ...

    # Read events: called (not awaited) on every manifest and blob GET, so an
    # implementation must only note them in memory and write them out later.
    def manifest_pulled(self, repo: str, digest: Digest) -> None: ...

    def blob_pulled(self, repo: str, digest: Digest) -> None: ...


class NullHooks:
    """Hooks that do nothing (tests, tools that only read)."""

    async def manifest_put(self, repo: str, digest: Digest, manifest: Manifest,
                           size: int, tag: str | None, config: bytes | None,
                           artifact: str | None = None) -> None:
        return None

    async def manifest_deleted(self, repo: str, digest: Digest) -> None:
        return None

    async def tag_deleted(self, repo: str, tag: str) -> None:
        return None

    async def blob_linked(self, repo: str, digest: Digest, size: int) -> None:
        return None

    async def blob_unlinked(self, repo: str, digest: Digest) -> None:
        return None

    def manifest_pulled(self, repo: str, digest: Digest) -> None:
        return None

    def blob_pulled(self, repo: str, digest: Digest) -> None:
        return None


async def emit(coro: Awaitable[None]) -> None:
    """Await a hook, logging instead of raising: the write already succeeded."""
    try:
        await coro
    except Exception:
        log.exception("hook failed")
