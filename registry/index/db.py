"""The SQLite index: everything in it is derived from storage and rebuildable.

sqlite is synchronous, so every call runs on one dedicated thread and the event
loop only awaits futures. Writes arrive as events (records.py) applied in
batches, one transaction each; reads are named queries returning typed rows.
Tables (schema.py has the DDL and its versions):

    manifests  (repo, digest) media type, size, artifact type, subject, annotations
    tags       (repo, tag) -> digest
    platforms  (repo, digest, declared_by, os, architecture, variant) per image manifest,
               from its config (declared_by = itself), and per index child, from the
               index's descriptor (declared_by = the index)
    builds     (repo, digest, declared_by, entry) what the manifest needs of a host: os,
               architecture, target, CUDA, ROCm, MPI, memory... keyed as platforms; filled
               by the Describer the index is given (index/builds.py)
    search_docs, search_fts  one full-text document per manifest and per spec
               (index/search.py); manifests.labels holds each image's config labels
    artifacts  (repo, digest) subject, artifact type, created, document: what core's
               artifact check recorded of a referrer's document (index/artifacts.py)
    blob_refs  (repo, manifest, blob) which manifests use which blobs (config, layers)
    blobs      (repo, digest) size: blobs linked into a repository
    pulls      (repo, digest, kind) count, last_pulled: read events
    spack_specs (cache, hash) name, version, arch, compiler, variants, dependencies,
               size: the specs of every Spack build cache (registry.spack.catalog)
    signatures (repo, digest, signature, position) format, identity, key, valid, reason:
               each manifest's signatures as the trust room last verified them
               (registry/trust/feed.py; one "unsigned" row for none)
    scans      (digest) severity, counts, packages, scanned_at, synced_at: the summary of
               each manifest's scan result (index/scans.py; registry/scan sends it)
    meta       schema_version, catchup ("1": contents unknown, fill from storage)
    writers    one row per process that has the file open for writing

Dirty flag. A writer's row is deleted only by an orderly close with nothing
left unapplied; a row whose process is gone therefore means writes may be
missing, and the next writer to open claims the repair (`dirty`): the server
then runs a catch-up pass (core/indexing.py) in the background.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from registry.index import artifacts, blob_report, builds, scans, schema, search
from registry.index.builds import Describer
from registry.index.records import (
    ArtifactRow,
    BlobReport,
    BlobRow,
    BlobUse,
    BuildRow,
    Event,
    ManifestDescribe,
    ManifestPut,
    ManifestRow,
    Platform,
    PullStat,
    ScanSummary,
    SignatureRow,
    SpecRow,
    TagRow,
)
from registry.index.writes import APPLY
from registry.lifecycle import pid_alive

VISIBLE_TABLES = 8  # callers' visible names kept as temporary tables (Index.search)

T = TypeVar("T")

# Writer sessions of this process, to tell our own live rows from rows a dead
# process with the same pid left (pid 1 in a restarted container).
_LIVE_SESSIONS: set[str] = set()


def _alive(pid: int, session: str) -> bool:
    if pid == os.getpid():
        return session in _LIVE_SESSIONS
    return pid_alive(pid)


# Up to this many repositories, recent_tags reads their tags by name rather than walking
# every tag by time.
FEW_REPOSITORIES = 64
# Every blob and manifest each repository lists, with its size: what usage counts.
_STORED = ("SELECT repo, digest, size FROM blobs UNION ALL "
           "SELECT repo, digest, size FROM manifests")


class Index:
    """The derived SQLite index of one registry process: named reads, batched writes,
    and the dirty flag that tells the server to catch up with storage after a crash."""

    def __init__(self, path: str | Path, describer: Describer | None = None) -> None:
        self.path = str(path)
        # What a manifest needs of a host (index/builds.py); None: no build rows.
        self.describer = describer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index")
        self._conn: sqlite3.Connection | None = None
        self._db: sqlite_utils.Database | None = None
        self._session = f"{os.getpid()}-{uuid.uuid4().hex}"
        self.opened: schema.Opened | None = None
        self.dirty_reason = ""  # why the index was dirty when opened, for the log
        # Dirty generations: bumped when writes may have been lost; a catch-up pass
        # begun at generation g makes everything up to g clean.
        self._dirty_gen = 0
        self._clean_gen = 0
        self.dirtied = asyncio.Event()  # set by mark_dirty, for the catch-up task
        self._applied = 0  # batches this process applied (search_names' cache key)
        self._names: tuple[tuple[int, int], tuple[list[str], list[str]]] | None = None
        # Callers' visible names as temporary tables (search.fill_visible): key -> table,
        # the least recently used first; at most VISIBLE_TABLES of them.
        self._visible: OrderedDict[Hashable, str] = OrderedDict()

    # -- thread plumbing -----------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("index is not open")
        return self._conn

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def prepare(cls, path: str | Path) -> None:
        """Create or migrate the file synchronously, before worker processes fork,
        so that they never race each other over the schema."""
        conn, _ = schema.connect(str(path))
        conn.close()

    def _open(self) -> str | None:
        conn, self.opened = schema.connect(self.path)
        self._conn, self._db = conn, sqlite_utils.Database(conn)
        self._visible.clear()  # temporary tables die with their connection
        # Claim the repair of whatever crashed writers left, in one transaction
        # so that exactly one of several workers opening together gets it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            stale = [s for s, pid in conn.execute("SELECT session, pid FROM writers")
                     if not _alive(pid, s)]
            conn.executemany("DELETE FROM writers WHERE session = ?", [[s] for s in stale])
            row = conn.execute("SELECT value FROM meta WHERE key = 'catchup'").fetchone()
            pending = row is not None and row[0] == "1"
            schema.set_meta(conn, "catchup", "0")
            conn.execute("INSERT INTO writers (session, pid, opened_at) VALUES (?, ?, ?)",
                         [self._session, os.getpid(), time.time()])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _LIVE_SESSIONS.add(self._session)
        if stale:
            return "a writer did not close it cleanly"
        if pending:
            return {schema.Opened.CREATED: "new file",
                    schema.Opened.REPLACED: "replaced an unusable file",
                    schema.Opened.MIGRATED: "migrated to a schema with new tables"}.get(
                        self.opened, "contents unknown")
        return None

    async def open(self) -> None:
        """Open for writing: migrate or replace the file as needed, register this
        process as a writer, and claim any repair a crash left (see `dirty`)."""
        reason = await self._run(self._open)
        if reason is not None:
            self.dirty_reason = reason
            self.mark_dirty()

    def _close(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if not self.dirty:  # an orderly close with nothing lost: clean
                conn.execute("DELETE FROM writers WHERE session = ?", [self._session])
        finally:
            _LIVE_SESSIONS.discard(self._session)
            conn.close()
            self._conn = self._db = None

    async def close(self) -> None:
        """Close; the writer row stays (the index stays dirty) if writes were lost.
        Drain the hooks first (`IndexHooks.close`)."""
        await self._run(self._close)
        self._pool.shutdown(wait=True)

    # -- dirty flag ----------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """True while some write may be missing from the index (a crash before this
        process started, a dropped event) and no catch-up pass has repaired it."""
        return self._clean_gen < self._dirty_gen

    @property
    def dirty_generation(self) -> int:
        """Take before a catch-up pass; give to `mark_clean` when it succeeds."""
        return self._dirty_gen

    def mark_dirty(self) -> None:
        """Some write was not recorded: keep this process's writer row on close, and
        wake the catch-up task. Cheap and non-blocking; call it on the event loop."""
        self._dirty_gen += 1
        self.dirtied.set()

    def mark_clean(self, generation: int) -> None:
        """A catch-up pass begun at `generation` finished: losses up to it are repaired."""
        self._clean_gen = max(self._clean_gen, generation)
        if not self.dirty:
            self.dirtied.clear()

    # -- writes --------------------------------------------------------------

    def _apply(self, events: Sequence[Event]) -> None:
        conn = self._connection()
        self._applied += 1
        conn.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                previous = search.before(conn, event)
                APPLY[type(event)](conn, event)
                if isinstance(event, ManifestPut | ManifestDescribe):  # after its row
                    builds.record(conn, event.repo, event.digest, event.manifest,
                                  event.config, self.describer)
                    artifacts.record(conn, event.repo, event.digest, event.manifest,
                                     event.artifact, event.at or time.time())
                search.after(conn, event, previous)  # last: documents mirror the rows
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def apply(self, events: Sequence[Event]) -> None:
        """Apply `events` in order, in one transaction (all or none)."""
        if events:
            await self._run(self._apply, events)

    def _clear(self) -> None:
        conn = self._connection()
        self._applied += 1
        conn.execute("BEGIN IMMEDIATE")
        for table in ("manifests", "tags", "platforms", "builds", "artifacts", "blob_refs",
                      "blobs", "signatures", "scans"):
            conn.execute(f"DELETE FROM {table}")
        search.clear_manifests(conn)
        conn.execute("COMMIT")

    async def clear(self) -> None:
        """Forget everything derived from storage (pull counts stay: storage has none)."""
        await self._run(self._clear)

    # -- reads ---------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        db = self._db
        if db is None:
            raise RuntimeError("index is not open")
        return list(db.query(sql, list(params)))

    async def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Raw SQL, for tests only: callers use the named queries below."""
        return await self._run(self._rows, sql, params)

    async def ping(self) -> None:
        """A trivial query: the index file opens and answers (for /readyz)."""
        await self._query("SELECT 1 AS one")

    async def repositories(self) -> list[str]:
        """Repositories with any manifest, tag or linked blob, sorted."""
        return [r["repo"] for r in await self._query(
            "SELECT repo FROM manifests UNION SELECT repo FROM tags "
            "UNION SELECT repo FROM blobs ORDER BY repo")]

    async def manifests(self, repo: str) -> list[ManifestRow]:
        """The manifests stored in `repo`, by digest."""
        rows = await self._query("SELECT * FROM manifests WHERE repo = ? ORDER BY digest",
                                 [repo])
        return [_manifest_row(r) for r in rows]

    async def tags(self, repo: str) -> list[TagRow]:
        """The tags of `repo`, by name."""
        return [TagRow(**r) for r in await self._query(
            "SELECT repo, tag, digest, updated_at FROM tags WHERE repo = ? ORDER BY tag",
            [repo])]

    async def recent_tags(self, limit: int, repos: Sequence[str] | None = None
                          ) -> list[dict[str, Any]]:
        """The `limit` tags set last (newest first), only in `repos` when given: repo,
        tag, digest, updated_at and the manifest's media_type, artifact_type, size.
        A few repositories: their tags by the primary key, sorted; many (or all): the
        tags newest first by `idx_tags_updated`, until `limit` of them are in `repos`
        (`+repo` keeps SQLite from the primary key there)."""
        where, params = "", []
        if repos is not None:
            column = "repo" if len(repos) <= FEW_REPOSITORIES else "+repo"
            where = f"WHERE {column} IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(repos)))
        return await self._query(
            "SELECT t.repo, t.tag, t.digest, t.updated_at, m.media_type, m.artifact_type, "
            f"m.size FROM (SELECT repo, tag, digest, updated_at FROM tags {where} "
            "ORDER BY updated_at DESC LIMIT ?) t LEFT JOIN manifests m ON m.repo = t.repo "
            "AND m.digest = t.digest ORDER BY t.updated_at DESC, t.repo, t.tag",
            [*params, limit])

    async def blobs(self, repo: str) -> list[BlobRow]:
        """The blobs linked into `repo`, by digest."""
        return [BlobRow(**r) for r in await self._query(
            "SELECT repo, digest, size FROM blobs WHERE repo = ? ORDER BY digest", [repo])]

    async def platforms(self, repo: str, digest: str) -> list[Platform]:
        """The platforms declared for manifest `digest` in `repo`, by its config
        and by the indexes that list it."""
        return [Platform(**r) for r in await self._query(
            "SELECT os, architecture, variant, os_version, declared_by, source FROM platforms"
            " WHERE repo = ? AND digest = ? ORDER BY os, architecture, variant, declared_by",
            [repo, digest])]

    async def builds(self, repo: str, digest: str) -> list[BuildRow]:
        """What manifest `digest` in `repo` needs of a host: the row its own config
        gives first, then one per platform an index listing it declares (empty if no
        describer saw it, or if it is an artifact)."""
        return await self._run(lambda: builds.builds(self._connection(), repo, digest))

    async def artifacts(self, repo: str, subject: str) -> list[ArtifactRow]:
        """The checked artifact documents of the referrers of `repo@subject`
        (index/artifacts.py): e.g. its image-compatibility specs."""
        return await self._run(lambda: artifacts.for_subject(self._connection(), repo,
                                                             subject))

    async def undescribed(self, repo: str) -> set[str]:
        """Manifests of `repo` indexed before builds were: the catch-up describes them."""
        return await self._run(lambda: builds.undescribed(self._connection(), repo))

    async def referrers(self, repo: str, subject: str) -> list[ManifestRow]:
        """The manifests in `repo` whose subject is `subject`."""
        rows = await self._query("SELECT * FROM manifests WHERE subject = ? AND repo = ? "
                                 "ORDER BY digest", [subject, repo])
        return [_manifest_row(r) for r in rows]

    async def usage(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Bytes per namespace: `logical` counts every repository's blobs and
        manifests (a layer in three repositories three times), `unique` each digest
        once within the namespace. Namespaces are first path components, or the
        one given (its repositories: the name itself and everything below it)."""
        ns = ("CASE WHEN instr(repo, '/') > 0 THEN substr(repo, 1, instr(repo, '/') - 1) "
              "ELSE repo END")
        where, params = "", []
        if namespace is not None:
            ns = "?"
            where = "WHERE repo = ? OR substr(repo, 1, ?) = ?"
            params = [namespace, namespace, len(namespace) + 1, namespace + "/"]
        sql = (
            f"WITH objs AS ({_STORED}), "
            f"sel AS (SELECT {ns} AS namespace, repo, digest, size FROM objs {where}) "
            "SELECT namespace, COUNT(DISTINCT repo) AS repositories, "
            "COALESCE(SUM(size), 0) AS logical, "
            "(SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT s2.digest, s2.size FROM sel s2 "
            " WHERE s2.namespace = sel.namespace)) AS unique_bytes "
            "FROM sel GROUP BY namespace ORDER BY namespace")
        return await self._query(sql, params)

    async def unique_bytes(self, pattern: str) -> int:
        """Bytes stored for the repositories whose names match the glob `pattern`
        (`*` crossing `/`, as SQLite's GLOB does), each digest once."""
        rows = await self._query(
            "SELECT COALESCE(SUM(size), 0) AS total FROM (SELECT DISTINCT digest, size FROM "
            f"({_STORED}) WHERE repo GLOB ?)", [pattern])
        return int(rows[0]["total"])

    async def total_usage(self) -> dict[str, int]:
        """Bytes over every repository: `logical` as usage() counts, `unique` what
        the store holds for them (each digest once)."""
        rows = await self._query(
            f"WITH objs AS ({_STORED}) SELECT COALESCE(SUM(size), 0) AS logical, "
            "(SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT digest, size FROM objs)) "
            "AS unique_bytes FROM objs")
        return {"logical": rows[0]["logical"], "unique": rows[0]["unique_bytes"]}

    async def blob_usage(self, digest: str) -> BlobUse:
        """Every repository `digest` is linked into and every manifest that names it."""
        def _q() -> BlobUse:
            linked = self._rows("SELECT repo FROM blobs WHERE digest = ? ORDER BY repo",
                                [digest])
            used = self._rows("SELECT repo, manifest FROM blob_refs WHERE blob = ? "
                              "ORDER BY repo, manifest", [digest])
            return BlobUse(digest, [r["repo"] for r in linked],
                           [(r["repo"], r["manifest"]) for r in used])

        return await self._run(_q)

    async def blob_repositories(self, digest: str) -> list[str]:
        """Every repository `digest` is linked into or named by a manifest of."""
        return await self._run(lambda: blob_report.users(self._connection(), digest))

    async def blob_report(self, digest: str, repos: Sequence[str],
                          limit: int = 500) -> BlobReport:
        """Where `digest` is used within `repos` (at most `limit` manifests), with the
        bytes each platform shares with the others (index/blob_report.py)."""
        return await self._run(blob_report.report, self._connection(), digest, repos, limit)

    async def pull_stats(self, repo: str | None = None,
                         digest: str | None = None) -> list[PullStat]:
        """Recorded pull counts, optionally for one repository and/or digest."""
        where, params = [], []
        for col, value in (("repo", repo), ("digest", digest)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        sql = "SELECT repo, digest, kind, count, last_pulled FROM pulls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [PullStat(**r) for r in await self._query(sql + " ORDER BY repo, digest, kind",
                                                          params)]

    async def spack_specs(self, cache: str | None = None, *, name: str | None = None,
                          target: str | None = None, after: tuple[str, ...] | None = None,
                          limit: int | None = None, name_prefix: str | None = None,
                          version: str | None = None, compiler: str | None = None,
                          hash_prefix: str | None = None) -> list[SpecRow]:
        """Specs of one cache (or all), by name, hash then cache, optionally only
        those named `name` (or whose name starts with `name_prefix`), of `version`
        (as spack's `@1.14` reads: 1.14 itself or 1.14.x), built by `compiler`
        (`gcc`: any version of it, `gcc@12` 12 or 12.x), for target `target`, whose
        hash starts with `hash_prefix`, starting after `after`: (name, hash) in one
        cache, (name, hash, cache) across caches. Prefixes are ranges over the
        indexes, never a scan of every row."""
        where: list[str] = []
        params: list[str | int] = []
        # `+cache`: not by the primary key, unless a hash prefix narrows it. Without
        # ANALYZE statistics SQLite would take the (cache, hash) key and sort every
        # spec of the cache by name for one page (0.8 s at 200,000 specs); walking
        # the (name, hash) index stops once the page is full.
        for col, value in (("cache" if hash_prefix else "+cache", cache), ("name", name),
                           ("target", target)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if name_prefix:
            # Names are [a-z0-9_-]: "~" sorts after every character one may hold.
            where.append("name >= ? AND name < ?")
            params.extend((name_prefix, name_prefix + "~"))
        if compiler is not None:  # spack 1.x writes `gcc@=12.2.0`, spack 0.2x `gcc@12.2.0`
            compiler = compiler.replace("@=", "@")
        compiler_sep = "." if "@" in (compiler or "") else "@"
        for col, value, sep in (("version", version, "."),
                                ("replace(compiler, '@=', '@')", compiler, compiler_sep)):
            if value is not None:
                where.append(f"({col} = ? OR substr({col}, 1, ?) = ?)")
                params.extend((value, len(value) + 1, value + sep))
        if hash_prefix:  # hashes are base32, lower case: "~" sorts after them all
            where.append("hash >= ? AND hash < ?")
            params.extend((hash_prefix, hash_prefix + "~"))
        if after is not None:
            where.append("(name, hash) > (?, ?)" if len(after) == 2
                         else "(name, hash, cache) > (?, ?, ?)")
            params.extend(after)
        sql = "SELECT * FROM spack_specs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY name, hash, cache"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_spec_row(r) for r in await self._query(sql, params)]

    async def spack_has_cache(self, cache: str) -> bool:
        """Whether `cache` has a spec (one probe of the primary key, not a count)."""
        return bool(await self._query(
            "SELECT 1 FROM spack_specs WHERE cache = ? LIMIT 1", [cache]))

    async def spack_through(self, cache: str) -> str | None:
        """The journal entry `cache`'s rows were last brought up to (SpecsThrough)."""
        rows = await self._query("SELECT value FROM meta WHERE key = ?",
                                 [f"spack-through:{cache}"])
        return rows[0]["value"] if rows else None

    async def spack_spec(self, cache: str, dag_hash: str) -> SpecRow | None:
        """One spec of `cache` by its full hash, None if the cache has no such spec."""
        rows = await self._query("SELECT * FROM spack_specs WHERE cache = ? AND hash = ?",
                                 [cache, dag_hash])
        return _spec_row(rows[0]) if rows else None

    async def spack_dependents(self, cache: str, dag_hash: str, limit: int,
                               scan_max: int = 5000) -> list[SpecRow] | None:
        """Up to `limit` specs of `cache` that depend directly on `dag_hash`, by name
        then hash; None when the cache holds more than `scan_max` specs: the answer is
        a scan of the cache's dependency lists (1.7 s at 200,000 specs), so only a
        cache small enough for it to be cheap is scanned."""
        def _q() -> list[dict[str, Any]] | None:
            held = self._rows("SELECT count(*) AS n FROM (SELECT 1 FROM spack_specs"
                              " WHERE cache = ? LIMIT ?)", [cache, scan_max + 1])[0]["n"]
            if held > scan_max:
                return None
            return self._rows(
                "SELECT * FROM spack_specs WHERE cache = ? AND instr(dependencies, ?) > 0"
                " ORDER BY name, hash LIMIT ?", [cache, f'"{dag_hash}"', limit])

        rows = await self._run(_q)
        return None if rows is None else [_spec_row(r) for r in rows]

    async def spack_cache_names(self) -> list[str]:
        """Every cache with a spec, sorted, without counting rows: one probe of the
        primary key per cache (a skip-scan), not a walk over every spec."""
        return [r["cache"] for r in await self._query(
            "WITH RECURSIVE c(cache) AS (SELECT min(cache) FROM spack_specs UNION ALL"
            " SELECT (SELECT min(cache) FROM spack_specs WHERE cache > c.cache) FROM c"
            " WHERE c.cache IS NOT NULL) SELECT cache FROM c WHERE cache IS NOT NULL")]

    async def spack_caches(self) -> dict[str, int]:
        """Every cache with a spec, and how many it holds."""
        return {r["cache"]: r["n"] for r in await self._query(
            "SELECT cache, count(*) AS n FROM spack_specs GROUP BY cache ORDER BY cache")}

    async def signatures(self, repo: str, digest: str) -> list[SignatureRow]:
        """The signatures of manifest `digest` in `repo` as last verified (registry.trust),
        by signature manifest and position; [] if it was never checked."""
        return [SignatureRow(r["signature"], r["position"], r["format"] or "",
                             r["identity"] or "", r["key"] or "", bool(r["valid"]),
                             r["reason"] or "", r["detail"] or "", r["checked_at"] or 0.0)
                for r in await self._query(
                    "SELECT * FROM signatures WHERE repo = ? AND digest = ?"
                    " ORDER BY signature, position", [repo, digest])]

    async def search(self, query: search.SearchQuery
                     ) -> tuple[list[search.Hit], list[dict[str, Any]]]:
        """What `query` finds (index/search.py), best first, with each hit's details."""
        def _q() -> tuple[list[search.Hit], list[dict[str, Any]]]:
            conn = self._connection()
            table = None
            if query.visible is not None and query.visible_key is not None:
                table = self._visible_table(conn, query.visible_key, query.visible)
            hits = search.query(conn, query, table)
            return hits, search.details(conn, hits)

        return await self._run(_q)

    def _visible_table(self, conn: sqlite3.Connection, key: Hashable,
                       visible: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
        """The temporary table holding `visible`, filled on the first search with `key`
        (a caller's rights at one state of the names, core/search.py): thousands of
        names are not parsed and indexed again by every search of that caller."""
        table = self._visible.get(key)
        if table is not None:
            self._visible.move_to_end(key)
            return table
        if len(self._visible) >= VISIBLE_TABLES:
            _, table = self._visible.popitem(last=False)  # its table is filled anew
        else:
            table = f"search_visible_{len(self._visible)}"
        try:
            search.fill_visible(conn, table, visible)
        except BaseException:
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
            raise
        self._visible[key] = table
        return table

    async def search_names(self) -> tuple[list[str], list[str]]:
        """The repositories and the caches search has documents of (kept between calls
        while nothing wrote to the file: a DISTINCT over every document is ~75 ms at
        19,000 repositories)."""
        def _q() -> tuple[list[str], list[str]]:
            conn = self._connection()
            # This connection's writes, and PRAGMA data_version: it changes whenever
            # another connection (another worker, a CLI) commits to the file.
            key = (self._applied, conn.execute("PRAGMA data_version").fetchone()[0])
            if self._names is None or self._names[0] != key:
                self._names = (key, search.names(conn))
            return self._names[1]

        return await self._run(_q)

    async def signed_by(self, repo: str, signature: str) -> list[str]:
        """The manifests of `repo` whose recorded signatures include the signature
        manifest `signature` (their state changes when it is deleted)."""
        return [r["digest"] for r in await self._query(
            "SELECT DISTINCT digest FROM signatures WHERE repo = ? AND signature = ?"
            " ORDER BY digest", [repo, signature])]

    async def scan_summary(self, repo: str, digest: str) -> ScanSummary | None:
        """The scan summary of manifest `digest` in `repo` (index/scans.py): its own, or for
        an index of images its children's together; None while it (or a child) has no
        result."""
        return await self._run(lambda: scans.summary(self._connection(), repo, digest))

    async def scan_stamps(self) -> dict[str, float]:
        """Every digest with a scan summary, and when that row was synced."""
        return await self._run(lambda: scans.stamps(self._connection()))

    async def manifest_holders(self, digest: str) -> list[str]:
        """The repositories the index says hold manifest `digest`."""
        return await self._run(lambda: scans.holders(self._connection(), digest))

    async def schema_version(self) -> int:
        """The version of the open file's schema (schema.SCHEMA_VERSION once open)."""
        return await self._run(lambda: schema.version_of(self._connection()))


def json_or(text: str | None, default: Any) -> Any:
    """A JSON column's value, or `default` when it is empty, unreadable or of another type."""
    try:
        value = json.loads(text or "null")
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def _spec_row(r: dict[str, Any]) -> SpecRow:
    deps = tuple((str(d[0]), str(d[1])) for d in json_or(r["dependencies"], [])
                 if isinstance(d, list) and len(d) == 2)
    return SpecRow(r["cache"], r["hash"], r["name"] or "", r["version"] or "",
                   r["platform"] or "", r["os"] or "", r["target"] or "",
                   r["compiler"] or "", json_or(r["variants"], {}), deps, r["size"] or 0,
                   r["format"] or 0, r["source"] or "", r["pushed_at"] or 0.0)


def _manifest_row(r: dict[str, Any]) -> ManifestRow:
    try:
        annotations = json.loads(r["annotations"] or "{}")
    except ValueError:
        annotations = {}
    return ManifestRow(r["repo"], r["digest"], r["media_type"] or "", r["artifact_type"] or "",
                       r["size"] or 0, r["subject"] or "", r["config_digest"] or "",
                       annotations, r["pushed_at"] or 0.0)
