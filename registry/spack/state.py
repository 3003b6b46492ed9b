"""One cache's records, and the spack database documents made from them.

`CacheState` applies journal entries (last name wins per spec hash) to the
process's state database (statedb.py: SQLite on local disk), which keeps, per
spec format, the union of the DAG nodes of every live record, with each node's
JSON written once and its dependents counted as they come and go. The database
spack reads (`index.json`, format v7 for spack 0.2x specs, v8 for spack 1.x
ones) is kept rendered in chunks by hash prefix (chunks.py): a push touches
the nodes of its own DAG and renders again the few chunks they fall in, and
the document is the chunks read back in order. What a CacheState holds in
memory is a few counters and the names of the recent entries, whatever the
number of specs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from registry.spack import chunks, statedb
from registry.spack.journal import WINDOW_NS, name_ns
from registry.spack.specs import SpecRecord

# spack's database version for the spec format its records are written in.
DB_VERSION = {4: "7", 5: "8"}
# `seen` is pruned of names older than the replay window when it has grown by this.
SEEN_SLACK = 1024


def _parse(doc: bytes | None) -> SpecRecord | None:
    if doc is None:
        return None
    try:
        return SpecRecord.from_json(json.loads(doc))
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class CacheState:
    """A cache's records as of the journal entries applied so far."""

    cache: str
    db: statedb.StateDB
    live_by_fmt: dict[int, int] = field(default_factory=lambda: {4: 0, 5: 0})
    seen: dict[str, int] = field(default_factory=dict)  # entry name -> its time, recent only
    cursor_ns: int = 0  # time of the newest entry applied
    # Wall-clock time the last complete listing of the journal began (or the entry a
    # merged snapshot was taken at): every entry visible then was applied. The next
    # listing starts a window before it, not before cursor_ns: a process applies its
    # own entries without listing, so cursor_ns can run ahead of what it has listed.
    listed_ns: int = 0
    version: int = 0  # bumped by every change
    since_snapshot: int = 0
    last_entry: str = ""
    # The newest entry when since_snapshot last started from 0 (or the snapshot
    # loaded): a snapshot named after it was taken by some process since.
    snapshot_mark: str = ""
    _pruned_at: int = 0

    async def get(self, h: str) -> SpecRecord | None:
        return _parse(await self.db.run(statedb.record, self.cache, h))

    async def get_many(self, hashes: Iterable[str]) -> AsyncIterator[SpecRecord]:
        """The live records among `hashes`, a page of lookups per round trip."""
        wanted = sorted(set(hashes))
        for i in range(0, len(wanted), statedb.PAGE):
            for _, doc in await self.db.run(statedb.records_of, self.cache,
                                            wanted[i:i + statedb.PAGE]):
                record = _parse(doc)
                if record is not None:
                    yield record

    async def live(self) -> AsyncIterator[SpecRecord]:
        """Every live record, by hash, read a page at a time."""
        after = ""
        while True:
            page = await self.db.run(statedb.live_page, self.cache, after)
            for _, doc in page:
                record = _parse(doc)
                if record is not None:
                    yield record
            if len(page) < statedb.PAGE:
                return
            after = page[-1][0]

    async def by_oci(self, digest: str) -> list[str]:
        """Hashes of the live records pushed as OCI manifest `digest`."""
        return await self.db.run(statedb.by_oci, self.cache, digest)

    def _saw(self, name: str) -> bool:
        """Note entry `name` as applied; False when it was already."""
        if name in self.seen:
            return False
        ns = name_ns(name)
        self.seen[name] = ns
        if ns > self.cursor_ns:
            self.cursor_ns = ns
        # Pruned once it grew by SEEN_SLACK, not on every entry: a burst of pushes
        # inside the window would otherwise rebuild it per push.
        if len(self.seen) > self._pruned_at + SEEN_SLACK:
            horizon = self.cursor_ns - 2 * WINDOW_NS
            self.seen = {k: v for k, v in self.seen.items() if v >= horizon}
            self._pruned_at = len(self.seen)
        if name > self.last_entry:
            self.last_entry = name
        self.since_snapshot += 1
        return True

    async def apply(self, name: str, h: str, record: SpecRecord | None) -> bool:
        """Apply entry `name` (a record, or None for a removal) for spec `h`;
        True if the state changed."""
        return (await self.apply_many([(name, h, record)]))[0]

    async def apply_many(self, entries: list[tuple[str, str, SpecRecord | None]]
                         ) -> list[bool]:
        """Apply entries in one transaction; for each, whether it changed the state."""
        flags = [self._saw(e[0]) for e in entries]
        fresh = [e for e, f in zip(entries, flags, strict=True) if f]
        changes = iter(await self.db.run(statedb.apply_many, self.cache, fresh)
                       if fresh else [])
        out = []
        for flag in flags:
            if not flag:
                out.append(False)
                continue
            changed, old_fmt, new_fmt = next(changes)
            self._count(old_fmt, new_fmt)
            if changed:
                self.version += 1
            out.append(changed)
        return out

    def _count(self, old_fmt: int | None, new_fmt: int | None) -> None:
        if old_fmt is not None:
            self.live_by_fmt[old_fmt] -= 1
        if new_fmt is not None:
            self.live_by_fmt[new_fmt] = self.live_by_fmt.get(new_fmt, 0) + 1

    async def snapshot_lines(self) -> AsyncIterator[bytes]:
        """Every record, removals included, as the lines of a snapshot (journal.py)."""
        after = ""
        while True:
            page = await self.db.run(statedb.entries_page, self.cache, after)
            for h, name, doc in page:
                body = doc.decode() if doc is not None else "null"
                yield f'[{json.dumps(h)},{json.dumps(name)},{body}]\n'.encode()
            if len(page) < statedb.PAGE:
                return
            after = page[-1][0]

    async def load_lines(self, lines: AsyncIterator[Any], through: str) -> None:
        """Load a snapshot's records ([hash, entry, record or None]) taken as of
        entry `through`, a page at a time."""
        batch: list[tuple[str, str, SpecRecord | None]] = []
        async for item in lines:
            try:
                h, name, rec = item
                record = SpecRecord.from_json(rec) if rec else None
            except (KeyError, TypeError, ValueError):
                continue
            batch.append((str(name), str(h), record))
            if len(batch) >= statedb.PAGE:
                await self._load_batch(batch)
        if batch:
            await self._load_batch(batch)
        self.last_entry = through
        self.snapshot_mark = max(self.snapshot_mark, through)
        self.cursor_ns = max(self.cursor_ns, name_ns(through))
        self.listed_ns = max(self.listed_ns, name_ns(through))
        self.version += 1

    async def _load_batch(self, batch: list[tuple[str, str, SpecRecord | None]]) -> None:
        for _, old_fmt, new_fmt in await self.db.run(statedb.apply_many, self.cache, batch):
            self._count(old_fmt, new_fmt)
        batch.clear()

    async def digest(self, fmt: int) -> tuple[str, int]:
        """Render what changed of the database of format `fmt`; its sha256 and size."""
        return await self.db.run(chunks.digest, self.cache, fmt, DB_VERSION[fmt])

    async def document(self, fmt: int) -> AsyncIterator[bytes]:
        """The database of format `fmt` as `digest` last rendered it, a page at a time
        (no `digest` may run meanwhile: service.SpackCaches.index sees to it)."""
        after: str | None = None
        while True:
            parts, after = await self.db.run(chunks.page, self.cache, fmt, DB_VERSION[fmt],
                                              after)
            for part in parts:
                yield part
            if after is None:
                return

    def db_format(self, layout: str) -> int | None:
        """Which spec format a layout's index holds: v2 (spack 0.2x) reads format
        4 only; v3 and OCI get format 5 (spack 1.x) when the cache has any, else
        4 (spack 1.x reads those too, in a v7 database). None: nothing to index."""
        if layout == "v2":
            return 4
        if self.live_by_fmt.get(5, 0) > 0:
            return 5
        return 4
