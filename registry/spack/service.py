"""Every cache's state, kept current from the journal, and the indexes made from it.

`SpackCaches` is the one object the OCI and S3 bridges, the classic views, the
API and the CLI use. Writes go to the journal first (`add`, `remove`: durable
before the push that caused them is answered) and are applied to this
process's state at once; other processes and replicas pick them up by reading
the journal's newest entries, at most every REFRESH_S per cache, when the
cache is next read. The state is on local disk (state.py, statedb.py), so a
process's memory does not grow with the number of specs. Indexes are rendered
when asked for and the state changed since the last rendering (or a garbage
collection freed the blob): the chunks the changes touched are rendered again
(chunks.py), the document hashed from the chunks, and stored as a blob,
streamed from them, unless the store has it already: content-addressed, so
replicas that render the same state serve the same digest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

from registry.core.areas import SpackArea
from registry.core.grammar import Digest
from registry.core.mounts import Mounts
from registry.core.protocols import Blobs, Uploads
from registry.spack import statedb, synth
from registry.spack.journal import WINDOW_NS, Journal, name_ns
from registry.spack.specs import SpecRecord
from registry.spack.state import CacheState

log = logging.getLogger("registry.spack")

REFRESH_S = 0.5
SNAPSHOT_EVERY = 1000
# How long "this cache has no journal" is believed before looking again.
ABSENT_S = 1.0
# A cache's journal not listed for this long (wall clock) may have lost entries
# this process never saw to pruning (journal.py: an entry is pruned only behind
# a snapshot taken 2 * WINDOW_NS after it): catching up then merges the newest
# snapshot first. Half a window leaves the other half for clock skew.
STALE_S = WINDOW_NS / 2e9
# A rendered index up to this size is stored in one write; larger ones are streamed.
SMALL_DOCUMENT = 1 << 20


class SpecSink(Protocol):
    """Who else wants to know of every record applied (the SQLite index)."""

    async def spec_added(self, cache: str, record: SpecRecord) -> None: ...

    async def spec_removed(self, cache: str, dag_hash: str) -> None: ...

    async def cache_loaded(self, cache: str, records: AsyncIterable[SpecRecord]) -> None:
        """The cache holds exactly `records` (a process loaded it from the store)."""

    async def caught_up(self, cache: str, through: str) -> None:
        """What was told of the cache so far reflects its journal up to entry `through`."""

    async def through(self, cache: str) -> str | None:
        """The entry the sink last heard `caught_up` for the cache, if it keeps one."""


class Signer(Protocol):
    """Clearsigns documents with the site key (spack.signing)."""

    @property
    def fingerprint(self) -> str: ...

    async def clearsign(self, data: bytes) -> bytes: ...

    def public_key(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Rendered:
    """An index document stored as a blob: its spec format, digest and size."""

    fmt: int
    digest: Digest
    size: int
    version: int


class SpackCaches:
    """The server-kept state of every Spack build cache in the store."""

    def __init__(self, area: SpackArea, blobs: Blobs | None = None,
                 sink: SpecSink | None = None, signer: Signer | None = None,
                 refresh_s: float = REFRESH_S) -> None:
        self.area = area  # spack/ in the store: journals, snapshots, signatures
        self.blobs = blobs
        # Where a rendered index too large for memory is stored from (set by the wiring).
        self.uploads: Uploads | None = None
        self.db = statedb.StateDB()
        # Links into caches (core/mounts.py), set with `blobs` by the wiring.
        self.mounts: Mounts | None = Mounts(blobs) if blobs is not None else None
        self.sink = sink
        self.signer = signer
        self.refresh_s = refresh_s
        self._states: dict[str, CacheState] = {}
        self._checked: dict[str, float] = {}
        # Wall-clock time each cache's journal was last listed from (see _catch_up).
        self._listed: dict[str, float] = {}
        self._absent: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # The last index rendered per (cache, format). Garbage collection
        # (core/gc.py) keeps what manifests, S3 entries and the Spack area name;
        # a rendered index (and the other documents `store_blob` makes) is named
        # by none of them unless a client read it through S3, so a collection may
        # free it: every use checks that its blob is still stored and linked (the
        # blob service's cached lookups, which a collection's removals invalidate
        # in every worker, and which record the blob as seen while one runs), and
        # renders it again when it is not.
        self._rendered: dict[tuple[str, int], Rendered] = {}

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    # -- state -----------------------------------------------------------------

    async def state(self, cache: str) -> CacheState | None:
        """The cache's state, caught up with the journal if it was not looked at
        for REFRESH_S; None when the cache has never held a spec."""
        now = time.monotonic()
        state = self._states.get(cache)
        if state is not None and now - self._checked.get(cache, 0.0) < self.refresh_s:
            return state
        if state is None and now - self._absent.get(cache, -ABSENT_S) < ABSENT_S:
            return None
        async with self._lock(cache):
            state = self._states.get(cache)
            if state is not None and time.monotonic() - self._checked.get(cache, 0.0) \
                    < self.refresh_s:
                return state
            journal = Journal(self.area, cache)
            if state is None:
                if not await journal.exists():
                    self._absent[cache] = time.monotonic()
                    return None
                state = await self._load(journal)
                self._states[cache] = state
                self._absent.pop(cache, None)
            else:
                await self._catch_up(cache, journal, state)
            self._checked[cache] = time.monotonic()
            return state

    async def _load(self, journal: Journal) -> CacheState:
        cache = journal.cache
        self._listed[cache] = time.time()
        await self.db.run(statedb.drop, cache)  # rows a failed load left
        state = CacheState(cache, self.db)
        snap = await journal.latest_snapshot()
        if snap is not None:
            await state.load_lines(snap[1], snap[0])
        await self._catch_up(cache, journal, state, tell=False)
        # The sink's rows are rewritten only when the entries since it last caught
        # up cannot be told instead: rewriting 200,000 rows (and their search
        # documents) costs the worker over 100 MB at once, to change nothing.
        through = await self.sink.through(cache) if self.sink is not None else None
        if through is None or not await self.tell_since(cache, through):
            await self._tell_all(state)
        return state

    async def tell_since(self, cache: str, through: str) -> bool:
        """Tell the sink the journal entries of `cache` from a window before entry
        `through` on, in name order: each spec ends as its last entry says, even
        one that arrived late (journal.py). False, telling nothing, when a snapshot
        since may have pruned entries that needs."""
        journal = Journal(self.area, cache)
        newest = await journal.newest_snapshot()
        if self.sink is None or (newest is not None
                                 and name_ns(newest) > name_ns(through) + WINDOW_NS):
            return False
        async for name, op in journal.entries(name_ns(through) - WINDOW_NS):
            h = op.get("hash")
            if not isinstance(h, str):
                continue
            through = max(through, name)
            if op.get("op") != "add":
                await self.sink.spec_removed(cache, h)
                continue
            try:
                await self.sink.spec_added(cache, SpecRecord.from_json(op["record"]))
            except (KeyError, TypeError, ValueError):
                continue
        await self.sink.caught_up(cache, through)
        return True

    async def resend(self, cache: str) -> None:
        """Tell the sink again everything `cache` holds (it lost an event)."""
        state = self._states.get(cache)
        if state is not None:
            await self._tell_all(state)

    async def _tell_all(self, state: CacheState) -> None:
        if self.sink is not None:
            await self.sink.cache_loaded(state.cache, state.live())
            if state.last_entry:
                await self.sink.caught_up(state.cache, state.last_entry)

    async def _catch_up(self, cache: str, journal: Journal, state: CacheState,
                        tell: bool = True) -> None:
        merged = False
        now = time.time()
        started_ns = time.time_ns()
        if state.listed_ns and now - self._listed.get(cache, now) > STALE_S:
            # Not listed for a while (an idle worker): entries this process never
            # saw may have been pruned behind a newer snapshot meanwhile (journal.py),
            # so that snapshot is merged in first: last entry wins per spec, as
            # for entries.
            newest = await journal.newest_snapshot()
            snap = await journal.latest_snapshot() \
                if newest is not None and newest > state.last_entry else None
            if snap is not None and snap[0] > state.last_entry:
                await state.load_lines(snap[1], snap[0])
                merged = True
        self._listed[cache] = now
        after = state.listed_ns - WINDOW_NS if state.listed_ns else 0
        batch: list[tuple[str, dict]] = []
        async for name, op in journal.entries(after, state.seen):
            batch.append((name, op))
            if len(batch) >= statedb.PAGE:
                await self._apply(cache, state, batch, tell)
                batch = []
        if batch:
            await self._apply(cache, state, batch, tell)
        state.listed_ns = max(state.listed_ns, started_ns)  # only once listed whole
        if merged and tell:
            await self._tell_all(state)
        await self._maybe_snapshot(journal, state)

    async def _apply(self, cache: str, state: CacheState, ops: list[tuple[str, dict]],
                     tell: bool = True) -> None:
        entries: list[tuple[str, str, SpecRecord | None]] = []
        for name, op in ops:
            h = op.get("hash")
            if not isinstance(h, str):
                continue
            record = None
            if op.get("op") == "add":
                try:
                    record = SpecRecord.from_json(op["record"])
                except (KeyError, TypeError, ValueError):
                    log.warning("spack: unreadable journal entry %s in %s", name, cache)
                    continue
            entries.append((name, h, record))
        changed = await state.apply_many(entries)
        if not tell or self.sink is None:
            return
        for (_, h, record), did in zip(entries, changed, strict=True):
            if not did:
                continue
            if record is not None:
                await self.sink.spec_added(cache, record)
            else:
                await self.sink.spec_removed(cache, h)
        if state.last_entry:
            await self.sink.caught_up(cache, state.last_entry)

    async def _maybe_snapshot(self, journal: Journal, state: CacheState) -> None:
        if state.since_snapshot < SNAPSHOT_EVERY or not state.last_entry:
            return
        state.since_snapshot = 0
        mark, state.snapshot_mark = state.snapshot_mark, state.last_entry
        try:
            # Every process counts every entry: one snapshot per SNAPSHOT_EVERY
            # entries is enough for them all, not one per process (each is the
            # whole cache: at 200,000 specs, hundreds of MB).
            newest = await journal.newest_snapshot()
            if newest is not None and newest > mark:
                return
            await journal.write_snapshot(state.last_entry, state.snapshot_lines())
        except Exception:  # the journal still holds everything
            log.warning("spack: could not write a snapshot of %s", journal.cache,
                        exc_info=True)

    # -- writes ----------------------------------------------------------------

    async def add(self, cache: str, record: SpecRecord) -> None:
        """Record that `cache` holds `record`, durably, before returning. Its
        blobs are linked into the cache's repository before (by the bridges: by the
        mount rule, or as documents they made), so that every view (OCI included)
        can serve them once the record is visible; nothing is linked here, so a
        record can never bring a blob into a cache."""
        await self._write(cache, {"op": "add", "hash": record.hash,
                                  "record": record.to_json()})

    async def remove(self, cache: str, dag_hash: str) -> None:
        state = await self.state(cache)
        if state is None or await state.get(dag_hash) is None:
            return
        await self._write(cache, {"op": "remove", "hash": dag_hash})

    async def _write(self, cache: str, op: dict) -> None:
        journal = Journal(self.area, cache)
        name = await journal.append(op)
        self._absent.pop(cache, None)
        state = await self.state(cache)
        if state is None:  # listing lags the write on some stores
            state = self._states.setdefault(cache, CacheState(cache, self.db))
        async with self._lock(cache):
            await self._apply(cache, state, [(name, op)])

    # -- reads -----------------------------------------------------------------

    async def record(self, cache: str, dag_hash: str) -> SpecRecord | None:
        state = await self.state(cache)
        return await state.get(dag_hash) if state is not None else None

    async def records_of(self, cache: str, hashes: Iterable[str]) -> AsyncIterator[SpecRecord]:
        """The live records of `cache` among `hashes`, looked up a page at a time
        (not a walk of the cache)."""
        state = await self.state(cache)
        if state is not None:
            async for record in state.get_many(hashes):
                yield record

    async def records(self, cache: str) -> AsyncIterator[SpecRecord]:
        """Every live record of the cache, by hash, read a page at a time."""
        state = await self.state(cache)
        if state is not None:
            async for record in state.live():
                yield record

    async def pushed_as(self, cache: str, digest: Digest) -> list[str]:
        """Hashes of the live records of `cache` pushed as OCI manifest `digest`."""
        state = await self.state(cache)
        return await state.by_oci(str(digest)) if state is not None else []

    def known_caches(self) -> list[str]:
        return sorted(self._states)

    async def index(self, cache: str, layout: str) -> Rendered | None:
        """The database for `layout` ("v2", "v3" or "oci"), stored as a blob."""
        state = await self.state(cache)
        if state is None or self.blobs is None:
            return None
        fmt = state.db_format(layout)
        if fmt is None:
            return None
        key = (cache, fmt)
        done = self._rendered.get(key)
        if done is not None and done.version == state.version \
                and await self._kept(cache, done.digest):
            return done
        async with self._lock(f"render:{cache}:{fmt}"):
            done = self._rendered.get(key)
            version = state.version
            if done is not None and done.version == version \
                    and await self._kept(cache, done.digest):
                return done
            # The chunks are rendered, hashed and read back under this lock,
            # so the bytes stored are the bytes hashed.
            hexdigest, size = await state.digest(fmt)
            digest = Digest("sha256", hexdigest)
            if not await self._kept(cache, digest):
                await self._store_document(cache, state.document(fmt), digest, size)
            done = self._rendered[key] = Rendered(fmt, digest, size, version)
            return done

    async def _store_document(self, cache: str, parts: AsyncIterator[bytes],
                              digest: Digest, size: int) -> None:
        """Store a rendered document as a blob of the cache: streamed unless small."""
        assert self.blobs is not None
        if self.uploads is None or size <= SMALL_DOCUMENT:
            await self.store_blob(cache, b"".join([p async for p in parts]), digest)
            return
        if await self.blobs.size(digest) is not None:
            assert self.mounts is not None
            await self.mounts.arrived(cache, digest, size)  # the server made it
            return
        await self.uploads.upload_whole(cache, digest, parts, size)

    async def oci_index(self, cache: str) -> bytes | None:
        """The `index.spack` manifest, its blobs stored and linked into the repository."""
        rendered = await self.index(cache, "oci")
        if rendered is None or self.blobs is None:
            return None
        await self.store_blob(cache, synth.EMPTY_CONFIG)
        return synth.oci_index_manifest(rendered.digest, rendered.size)

    async def store_blob(self, cache: str, data: bytes, digest: Digest | None = None) -> Digest:
        """Store a document the server made as a blob of the cache's repository,
        again if a garbage collection freed it (see `_rendered`)."""
        assert self.blobs is not None and self.mounts is not None
        digest = digest or Digest.of(data)
        await self.blobs.put_small(data, digest)
        if not await self.blobs.linked(cache, digest):
            await self.mounts.arrived(cache, digest, len(data))  # the server made it
        return digest

    async def _kept(self, cache: str, digest: Digest) -> bool:
        """Whether a document stored earlier is still a blob of the cache."""
        assert self.blobs is not None
        return await self.blobs.linked(cache, digest) \
            and await self.blobs.size(digest) is not None

    async def signed(self, cache: str, data: bytes) -> bytes:
        """`data` clearsigned with the site key: made once, kept in the store, so
        every replica serves the same signature (gpg's carry a timestamp)."""
        assert self.signer is not None
        digest = Digest.of(data)
        kept = await self.area.signed(cache, digest)
        if kept is not None:
            return kept
        signed = await self.signer.clearsign(data)
        await self.area.keep_signed(cache, digest, signed)
        return signed
