"""A cache's records, kept in storage as a journal of small immutable entries.

Every push appends one entry (`add` with the record, or `remove`), named by
the writer's clock and a random suffix, never overwritten: concurrent pushers
on any number of replicas never read-modify-write a shared document, so no
push can undo another's (spack's own `update-index` on OCI loses specs exactly
that way). A reader replays entries in name order; for each spec hash the
entry with the greatest name wins, so replaying twice, or out of order, gives
the same state.

Entries sit in directories of EPOCH_NS (about a minute) so that catching up
lists only the last few. Snapshots (`_snapshots/<entry name>`) hold every
record as of an entry and let a new process start without reading the whole
journal; a reader loads the newest and replays entries from WINDOW_NS before
it. That is exact as long as an entry becomes visible within WINDOW_NS of the
time in its name (writer clock skew plus write latency), which is why entries
are only pruned 2 * WINDOW_NS behind a snapshot.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Container
from typing import Any

from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound

EPOCH_NS = 64 * 10**9
WINDOW_NS = 60 * 10**9
ENTRY_MAX = 64 << 20
SNAPSHOT_MAX = 4 << 30


def entry_name(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    return f"{ns:020d}-{uuid.uuid4().hex[:12]}"


def name_ns(name: str) -> int:
    try:
        return int(name[:20])
    except ValueError:
        return 0


def _epoch(ns: int) -> str:
    return f"{max(ns, 0) // EPOCH_NS:012d}"


class Journal:
    """One cache's journal and snapshots in the store."""

    def __init__(self, driver: Driver, cache: str) -> None:
        self.driver = driver
        self.cache = cache

    async def exists(self) -> bool:
        for path in (paths.spack_journal_dir(self.cache), paths.spack_snapshots_dir(self.cache)):
            try:
                if await self.driver.list(path):
                    return True
            except PathNotFound:
                pass
        return False

    async def append(self, op: dict[str, Any]) -> str:
        """Write one entry; its name once this returns (the entry is durable)."""
        name = entry_name()
        path = paths.spack_journal_entry(self.cache, _epoch(name_ns(name)), name)
        await self.driver.put_content(path, json.dumps(op, separators=(",", ":")).encode())
        return name

    async def entries(self, after_ns: int, known: Container[str] = ()
                      ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every entry whose name is after time `after_ns` and not in `known`, in
        name order. A reader re-lists a window of entries it has mostly applied
        already: those cost a name in a listing, not a read."""
        base = paths.spack_journal_dir(self.cache)
        start = f"{base}/{_epoch(after_ns)}/{after_ns:020d}" if after_ns > 0 else ""
        async for info in self.driver.walk(base, start_after=start):
            name = info.path.rsplit("/", 1)[-1]
            if name in known:
                continue
            try:
                raw = await self.driver.get_content(info.path, ENTRY_MAX)
                yield name, json.loads(raw)
            except PathNotFound:
                continue  # pruned meanwhile: a snapshot holds it
            except ValueError:
                continue  # not one of ours; never fatal to the index

    async def latest_snapshot(self) -> tuple[str, dict[str, Any]] | None:
        try:
            names = sorted(await self.driver.list(paths.spack_snapshots_dir(self.cache)))
        except PathNotFound:
            return None
        for name in reversed(names):
            try:
                raw = await self.driver.get_content(paths.spack_snapshot(self.cache, name),
                                                    SNAPSHOT_MAX)
                return name, json.loads(raw)
            except (PathNotFound, ValueError):
                continue
        return None

    async def write_snapshot(self, through: str, doc: dict[str, Any]) -> None:
        """Store every record as of entry `through`, then drop what it makes
        unnecessary: older snapshots and entries 2 * WINDOW_NS before it."""
        await self.driver.put_content(paths.spack_snapshot(self.cache, through),
                                      json.dumps(doc, separators=(",", ":")).encode())
        try:
            names = sorted(await self.driver.list(paths.spack_snapshots_dir(self.cache)))
        except PathNotFound:
            names = []
        for old in names[:-2]:
            await self._drop(paths.spack_snapshot(self.cache, old))
        horizon = _epoch(name_ns(through) - 2 * WINDOW_NS)
        base = paths.spack_journal_dir(self.cache)
        try:
            epochs = await self.driver.list(base)
        except PathNotFound:
            return
        for epoch in epochs:
            if epoch < horizon:
                async for info in self.driver.walk(f"{base}/{epoch}"):
                    await self._drop(info.path)

    async def _drop(self, path: str) -> None:
        try:
            await self.driver.delete(path)
        except PathNotFound:
            pass


async def caches(driver: Driver, max_depth: int = 16) -> list[str]:
    """Every cache with a journal or snapshots in the store, sorted. Walks the
    directories under `spack/` (a cache name has a component per level) without
    listing any journal: one `list` per directory, not per entry."""
    found: list[str] = []

    async def visit(prefix: str, depth: int) -> None:
        path = paths.spack_cache(prefix) if prefix else paths.SPACK
        try:
            children = await driver.list(path)
        except PathNotFound:
            return
        if prefix and ("_journal" in children or "_snapshots" in children):
            found.append(prefix)
        if depth < max_depth:
            for child in children:
                if not child.startswith("_"):
                    await visit(f"{prefix}/{child}" if prefix else child, depth + 1)

    await visit("", 0)
    return sorted(found)
