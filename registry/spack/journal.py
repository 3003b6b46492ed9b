"""A cache's records, kept in storage as a journal of small immutable entries.

Every push appends one entry (`add` with the record, or `remove`), named by
the writer's clock and a random suffix, never overwritten: concurrent pushers
on any number of replicas never read-modify-write a shared document, so no
push can undo another's (spack's own `update-index` on OCI loses specs exactly
that way). A reader replays entries in name order; for each spec hash the
entry with the greatest name wins, so replaying twice, or out of order, gives
the same state.

Entries sit in directories of EPOCH_NS (about a minute) so that catching up
lists only the last few. Snapshots (`_snapshots/<entry name>`: a header line,
then one line per record, written and read as a stream) hold every
record as of an entry and let a new process start without reading the whole
journal; a reader loads the newest and replays entries from WINDOW_NS before
it. That is exact as long as an entry becomes visible within WINDOW_NS of the
time in its name (writer clock skew plus write latency), which is why entries
are only pruned 2 * WINDOW_NS behind a snapshot.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Container
from typing import Any

from registry.core.areas import SpackArea

EPOCH_NS = 64 * 10**9
WINDOW_NS = 60 * 10**9
ENTRY_MAX = 64 << 20
# A snapshot's name is the entry it was taken at; anything else is a scratch file.
SNAPSHOT_RE = re.compile(r"[0-9]{20}-[0-9a-f]{12}")


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
    """One cache's journal and snapshots, in the Spack area core hands the room."""

    def __init__(self, area: SpackArea, cache: str) -> None:
        self.cache = cache
        self._entries = area.journal(cache)  # <epoch>/<entry name>
        self._snapshots = area.snapshots(cache)  # <entry name>

    async def exists(self) -> bool:
        return bool(await self._entries.list() or await self._snapshots.list())

    async def append(self, op: dict[str, Any]) -> str:
        """Write one entry; its name once this returns (the entry is durable)."""
        name = entry_name()
        await self._entries.write(f"{_epoch(name_ns(name))}/{name}",
                                  json.dumps(op, separators=(",", ":")).encode())
        return name

    async def entries(self, after_ns: int, known: Container[str] = ()
                      ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every entry whose name is after time `after_ns` and not in `known`, in
        name order. A reader re-lists a window of entries it has mostly applied
        already: those cost a name in a listing, not a read."""
        start = f"{_epoch(after_ns)}/{after_ns:020d}" if after_ns > 0 else ""
        async for info in self._entries.walk(start_after=start):
            name = info.name.rsplit("/", 1)[-1]
            if name in known:
                continue
            raw = await self._entries.read(info.name, ENTRY_MAX)
            if raw is None:
                continue  # pruned meanwhile: a snapshot holds it
            try:
                yield name, json.loads(raw)
            except ValueError:
                continue  # not one of ours; never fatal to the index

    async def newest_snapshot(self) -> str | None:
        """The entry the newest snapshot was taken at (by name only, unread)."""
        names = [n for n in await self._snapshots.list() if SNAPSHOT_RE.fullmatch(n)]
        return max(names) if names else None

    async def latest_snapshot(self) -> tuple[str, AsyncIterator[Any]] | None:
        """The newest readable snapshot: the entry it was taken at, and its records
        ([hash, entry, record or None]) as they are read, one line at a time."""
        for name in reversed(sorted(n for n in await self._snapshots.list()
                                    if SNAPSHOT_RE.fullmatch(n))):
            lines = _lines(self._snapshots.reader(name))
            try:
                head = json.loads(await anext(lines))
            except (StopAsyncIteration, ValueError):
                continue
            if isinstance(head, dict) and "records" in head:  # written whole, once
                records = head.get("records") or {}
                return str(head.get("through", name)), _legacy(records)
            if isinstance(head, dict) and isinstance(head.get("through"), str):
                return head["through"], _items(lines)
        return None

    async def write_snapshot(self, through: str, lines: AsyncIterator[bytes]) -> None:
        """Store every record as of entry `through` (`lines`, one per record, as
        CacheState.snapshot_lines makes them), streamed: at a scratch name, then
        moved into place. Then drop what it makes unnecessary: older snapshots and
        entries 2 * WINDOW_NS before it."""
        scratch = f"tmp-{uuid.uuid4().hex}"
        writer = await self._snapshots.writer(scratch)
        try:
            buf = bytearray(json.dumps({"through": through}).encode() + b"\n")
            async for line in lines:
                buf += line
                if len(buf) >= 1 << 20:
                    await writer.write(bytes(buf))
                    buf.clear()
            await writer.write(bytes(buf))
            await writer.seal()
        except BaseException:
            await writer.cancel()
            raise
        await self._snapshots.move(scratch, through)
        for old in sorted(n for n in await self._snapshots.list()
                          if SNAPSHOT_RE.fullmatch(n))[:-2]:
            await self._snapshots.delete(old)
        horizon = _epoch(name_ns(through) - 2 * WINDOW_NS)
        for epoch in await self._entries.list():
            if epoch < horizon:
                async for info in self._entries.walk(epoch):
                    await self._entries.delete(info.name)


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    rest = b""
    async for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            if line:
                yield line
    if rest:
        yield rest


async def _items(lines: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    async for line in lines:
        try:
            yield json.loads(line)
        except ValueError:
            continue  # a damaged line costs its record, which the journal may still hold


async def _legacy(records: dict) -> AsyncIterator[Any]:
    """The records of a snapshot as the first versions wrote it: one document."""
    for h, item in records.items():
        if isinstance(item, list) and len(item) == 2:
            yield [h, item[0], item[1]]
