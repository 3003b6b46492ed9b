"""The specs of every cache in the SQLite index, for `registry spack list`, the
API and the search that will be built on it.

`SpecCatalog` is the `SpecSink` of `SpackCaches`: every record a cache's state
gains or loses becomes a row event. In the server the events go through the
index's write queue, off the request path; the CLI applies them at once. A
cache loaded whole has its rows rewritten a batch per transaction, so that
neither its records nor its rows are ever all in memory.
`keep_current` makes the rows follow the store, whoever wrote it: it finds the
caches (other replicas' and `registry spack import`'s included), catches each
up with its journal, and rewrites a cache's rows whenever an event was lost.
The rows of a cache note the journal entry they reflect (SpecsThrough), so
that `current` (for `registry spack list`) replays only the entries since then,
not a load of the whole cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Iterable

from registry.index.db import Index
from registry.index.hooks import IndexHooks
from registry.index.records import (
    SpecDeleted,
    SpecEvent,
    SpecPut,
    SpecRow,
    SpecsReset,
    SpecsThrough,
)
from registry.spack.service import SpackCaches
from registry.spack.specs import SpecRecord

log = logging.getLogger("registry.spack")

REFRESH_S = 2.0
RESET_BATCH = 500  # rows per transaction when a cache's rows are rewritten
DISCOVER_S = 10.0


def row_of(cache: str, record: SpecRecord) -> SpecRow:
    """The index row of `record` in `cache`."""
    root = record.root
    names = {n.hash: n.name for n in record.spec.nodes}
    return SpecRow(cache, root.hash, root.name, root.version, root.platform, root.os,
                   root.target, root.compiler, dict(root.variants),
                   tuple((names.get(h, ""), h) for h in root.deps), record.tarball_size,
                   record.spec.format, record.source, record.pushed)


class SpecCatalog:
    """Keeps the `spack_specs` table of the index equal to the caches' state,
    and answers queries over it (see the module docstring)."""

    def __init__(self, index: Index, hooks: IndexHooks | None = None) -> None:
        self.index = index
        self.hooks = hooks
        # The caches whose state feeds the rows (set by the wiring): a read of one
        # cache's rows first catches that cache up with its journal, so the rows
        # hold other replicas' pushes as soon as the index views do, not a
        # `keep_current` round (REFRESH_S, or DISCOVER_S for a new cache) later.
        self.states: SpackCaches | None = None

    async def catch_up(self, cache: str) -> None:
        """Catch `cache` up with its journal (at most every SpackCaches.refresh_s):
        what it gained or lost is queued for the rows, which a read flushes first."""
        if self.states is not None:
            await self.states.state(cache)

    async def _emit(self, event: SpecEvent) -> None:
        if self.hooks is not None:
            self.hooks.spec_event(event)
        else:
            await self.index.apply([event])

    # -- SpecSink ---------------------------------------------------------------

    async def spec_added(self, cache: str, record: SpecRecord) -> None:
        await self._emit(SpecPut(row_of(cache, record)))

    async def spec_removed(self, cache: str, dag_hash: str) -> None:
        await self._emit(SpecDeleted(cache, dag_hash))

    async def caught_up(self, cache: str, through: str) -> None:
        await self._emit(SpecsThrough(cache, through))

    async def through(self, cache: str) -> str | None:
        if self.hooks is not None and self.hooks.queued:
            await self.hooks.flush()
        return await self.index.spack_through(cache)

    async def cache_loaded(self, cache: str,
                           records: AsyncIterable[SpecRecord] | Iterable[SpecRecord]) -> None:
        """Rewrite the cache's rows, a batch at a time: a cache of any size costs
        a batch of rows in memory, not every row. What was queued before goes
        first, so no older event lands after the rows it would contradict."""
        if self.hooks is not None and self.hooks.queued:
            await self.hooks.flush()
        batch: list[SpecRow] = []
        first = True

        async def write() -> None:
            nonlocal first
            if first:
                await self.index.apply([SpecsReset(cache, tuple(batch))])
                first = False
            elif batch:
                await self.index.apply([SpecPut(row) for row in batch])
            batch.clear()

        if isinstance(records, AsyncIterable):
            async for record in records:
                batch.append(row_of(cache, record))
                if len(batch) >= RESET_BATCH:
                    await write()
        else:
            for record in records:
                batch.append(row_of(cache, record))
        await write()

    # -- reads ------------------------------------------------------------------

    async def specs(self, cache: str | None = None, *, name: str | None = None,
                    target: str | None = None, after: tuple[str, ...] | None = None,
                    limit: int | None = None, name_prefix: str | None = None,
                    version: str | None = None, compiler: str | None = None,
                    hash_prefix: str | None = None) -> list[SpecRow]:
        """The specs of `cache` (or of all caches) by name then hash; see
        Index.spack_specs. Everything queued before the call is applied first."""
        await self._flushed()
        return await self.index.spack_specs(cache, name=name, target=target, after=after,
                                            limit=limit, name_prefix=name_prefix,
                                            version=version, compiler=compiler,
                                            hash_prefix=hash_prefix)

    async def spec(self, cache: str, dag_hash: str) -> SpecRow | None:
        """The row of one spec of `cache`, None if it holds no spec of that hash."""
        await self._flushed()
        return await self.index.spack_spec(cache, dag_hash)

    async def dependents(self, cache: str, dag_hash: str, limit: int,
                         scan_max: int = 5000) -> list[SpecRow] | None:
        """Up to `limit` specs of `cache` that depend directly on `dag_hash`; None for
        a cache of more than `scan_max` specs (see Index.spack_dependents)."""
        await self._flushed()
        return await self.index.spack_dependents(cache, dag_hash, limit, scan_max)

    async def _flushed(self) -> None:
        if self.hooks is not None and self.hooks.queued:
            await self.hooks.flush()

    async def has_cache(self, cache: str) -> bool:
        """Whether `cache` has a spec."""
        await self._flushed()
        return await self.index.spack_has_cache(cache)

    async def cache_names(self) -> list[str]:
        """Every cache with a spec, sorted (no row counts: see Index.spack_cache_names)."""
        await self._flushed()
        return await self.index.spack_cache_names()

    async def caches(self) -> dict[str, int]:
        """Every cache with a spec, and how many."""
        await self._flushed()
        return await self.index.spack_caches()


async def sync(caches: SpackCaches, catalog: SpecCatalog) -> list[str]:
    """Load every cache in the store into `caches` (and so its rows into the
    catalog), drop the rows of caches the store no longer has; the caches."""
    names = await caches.area.caches()
    for name in names:
        await caches.state(name)
    for gone in set(await catalog.index.spack_cache_names()) - set(names):
        await catalog.cache_loaded(gone, ())
    return names


async def current(caches: SpackCaches, catalog: SpecCatalog) -> None:
    """Bring the catalog's rows up to the store, as `sync` does, but telling only
    the journal entries since those a cache's rows reflect when the journal still
    holds them all (SpackCaches.tell_since): a cache of any size costs what was
    pushed since, not a load."""
    names = await caches.area.caches()
    for name in names:
        through = await catalog.through(name)
        if through is None or not await caches.tell_since(name, through):
            await caches.state(name)  # a load: every row rewritten
    for gone in set(await catalog.index.spack_cache_names()) - set(names):
        await catalog.cache_loaded(gone, ())


async def keep_current(caches: SpackCaches, catalog: SpecCatalog,
                       refresh_s: float = REFRESH_S, discover_s: float = DISCOVER_S) -> None:
    """Run until cancelled: the catalog follows every cache in the store."""
    names: list[str] = []
    discovered = float("-inf")
    dropped = catalog.hooks.dropped if catalog.hooks is not None else 0
    while True:
        try:
            if time.monotonic() - discovered >= discover_s:
                names = await sync(caches, catalog)
                discovered = time.monotonic()
            for name in set(names) | set(caches.known_caches()):
                await caches.state(name)
            now_dropped = catalog.hooks.dropped if catalog.hooks is not None else 0
            if now_dropped != dropped:  # some row event was lost: rewrite every cache
                dropped = now_dropped
                for name in caches.known_caches():
                    await caches.resend(name)
        except asyncio.CancelledError:
            raise
        except Exception:  # the next round tries again; serving never depends on it
            log.warning("spack: keeping the spec index current failed", exc_info=True)
        await asyncio.sleep(refresh_s)
