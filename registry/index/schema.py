"""The index's schema, its version, and the migrations between versions.

Version 1 is the schema the first index code created with sqlite-utils, with no
record of its version: a file with a `manifests` table and no `meta` table is a
version 1 file. Every later version is a migration appended to MIGRATIONS, and
the file's `meta.schema_version` says which ones it has had.

A new file gets every migration in order, so new and migrated files are built by
the same statements. A file this code cannot use (newer than it knows, a failed
migration, not a database at all) is moved aside and replaced by an empty one,
which the caller then fills from storage: the index is derived data, so losing a
file costs a catch-up pass, never correctness.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from enum import Enum
from pathlib import Path

log = logging.getLogger("registry.index")

# Exactly what the version 1 code created (IF NOT EXISTS so that a version 1 file
# and an empty one take the same path).
V1 = [
    """CREATE TABLE IF NOT EXISTS "manifests" (
   "repo" TEXT, "digest" TEXT, "media_type" TEXT, "artifact_type" TEXT, "size" INTEGER,
   "subject" TEXT, "annotations" TEXT, "config_digest" TEXT, "pushed_at" REAL,
   PRIMARY KEY ("repo", "digest"))""",
    """CREATE TABLE IF NOT EXISTS "tags" (
   "repo" TEXT, "tag" TEXT, "digest" TEXT, "updated_at" REAL, PRIMARY KEY ("repo", "tag"))""",
    """CREATE TABLE IF NOT EXISTS "platforms" (
   "repo" TEXT, "digest" TEXT, "declared_by" TEXT, "os" TEXT, "architecture" TEXT,
   "variant" TEXT, "os_version" TEXT, "source" TEXT,
   PRIMARY KEY ("repo", "digest", "declared_by", "os", "architecture", "variant"))""",
    """CREATE TABLE IF NOT EXISTS "blob_refs" (
   "repo" TEXT, "manifest" TEXT, "blob" TEXT, "media_type" TEXT, "size" INTEGER,
   PRIMARY KEY ("repo", "manifest", "blob"))""",
    """CREATE TABLE IF NOT EXISTS "blobs" (
   "repo" TEXT, "digest" TEXT, "size" INTEGER, PRIMARY KEY ("repo", "digest"))""",
    'CREATE INDEX IF NOT EXISTS "idx_blob_refs_blob" ON "blob_refs" ("blob")',
    'CREATE INDEX IF NOT EXISTS "idx_manifests_subject" ON "manifests" ("subject")',
    'CREATE INDEX IF NOT EXISTS "idx_tags_repo_digest" ON "tags" ("repo", "digest")',
]

# Version 2: the file records its version; read events; the writers that have it
# open (a row left by a process that is gone means it died with writes unapplied:
# the "dirty" flag, one per writer so that N workers can share the file).
V2 = [
    'CREATE TABLE "meta" ("key" TEXT PRIMARY KEY, "value" TEXT)',
    """CREATE TABLE "writers" (
   "session" TEXT PRIMARY KEY, "pid" INTEGER, "opened_at" REAL)""",
    """CREATE TABLE "pulls" (
   "repo" TEXT, "digest" TEXT, "kind" TEXT, "count" INTEGER, "last_pulled" REAL,
   PRIMARY KEY ("repo", "digest", "kind"))""",
    'CREATE INDEX "idx_pulls_last" ON "pulls" ("kind", "last_pulled")',
    'CREATE INDEX "idx_blobs_digest" ON "blobs" ("digest")',
]

# Version 3: the specs of every Spack build cache (registry.spack.catalog), one row
# per spec a cache holds, for `registry spack list`, the API and search.
V3 = [
    """CREATE TABLE "spack_specs" (
   "cache" TEXT, "hash" TEXT, "name" TEXT, "version" TEXT, "platform" TEXT, "os" TEXT,
   "target" TEXT, "compiler" TEXT, "variants" TEXT, "dependencies" TEXT, "size" INTEGER,
   "format" INTEGER, "source" TEXT, "pushed_at" REAL, PRIMARY KEY ("cache", "hash"))""",
    'CREATE INDEX "idx_spack_specs_name" ON "spack_specs" ("name", "hash")',
    'CREATE INDEX "idx_spack_specs_target" ON "spack_specs" ("target")',
]

# Version 4: what each manifest needs of a host (registry.arch describes it; the index
# is handed the describer, index/builds.py). One row per image manifest, from its own
# config (declared_by = itself), and per platform an index declares for a child
# (declared_by = the index): the keys of `platforms`, plus `entry`, the child's
# position in the index, so that one child listed twice keeps both platforms. `error`
# says why a manifest could not be described (its other columns are then NULL).
# `manifests.described` is 1 once a describer has seen the manifest: the rows of a file
# migrated from version 3 are 0, and the catch-up this migration asks for (meta
# catchup) describes them from storage.
V4 = [
    """CREATE TABLE "builds" (
   "repo" TEXT, "digest" TEXT, "declared_by" TEXT, "entry" INTEGER, "source" TEXT,
   "os" TEXT, "architecture" TEXT, "variant" TEXT, "os_version" TEXT, "os_features" TEXT,
   "features" TEXT, "target" TEXT, "cuda" TEXT, "rocm" TEXT, "mpi" TEXT, "memory" INTEGER,
   "sources" TEXT, "error" TEXT,
   PRIMARY KEY ("repo", "digest", "declared_by", "entry"))""",
    'CREATE INDEX "idx_builds_declared_by" ON "builds" ("repo", "declared_by")',
    'CREATE INDEX "idx_builds_target" ON "builds" ("target")',
    'ALTER TABLE "manifests" ADD COLUMN "described" INTEGER NOT NULL DEFAULT 0',
    """INSERT OR REPLACE INTO "meta" ("key", "value") VALUES ('catchup', '1')""",
]

# Version 5: checked artifact documents (index/artifacts.py), one row per referrer whose
# document core's artifact check read at push (image-compatibility specs), kept for its
# subject. Referrers of those types indexed before are described again by the catch-up
# this asks for (described = 0), which reads their documents from storage.
V5 = [
    """CREATE TABLE "artifacts" (
   "repo" TEXT, "digest" TEXT, "subject" TEXT, "artifact_type" TEXT, "created" TEXT,
   "document" TEXT, "pushed_at" REAL, PRIMARY KEY ("repo", "digest"))""",
    'CREATE INDEX "idx_artifacts_subject" ON "artifacts" ("repo", "subject")',
    """UPDATE "manifests" SET "described" = 0 WHERE "artifact_type" IN
   ('application/vnd.oci.image-compatibility.v1',
    'application/vnd.nfd.image-compatibility.v1alpha1')""",
    """INSERT OR REPLACE INTO "meta" ("key", "value") VALUES ('catchup', '1')""",
]

# Version 6: each manifest's signatures as the trust room last verified them
# (registry/trust/feed.py): one row per signature (`signature` the digest of the
# manifest carrying it, `position` its place there), or one row with signature ""
# and reason "unsigned" for a manifest checked and found to have none.
V6 = [
    """CREATE TABLE "signatures" (
   "repo" TEXT, "digest" TEXT, "signature" TEXT, "position" INTEGER, "format" TEXT,
   "identity" TEXT, "key" TEXT, "valid" INTEGER, "reason" TEXT, "detail" TEXT,
   "checked_at" REAL, PRIMARY KEY ("repo", "digest", "signature", "position"))""",
]

# Version 7: full-text search (index/search.py): one FTS5 document per manifest and per
# Spack spec, and each manifest's config labels. Every manifest is described again by
# the catch-up this asks for (its labels are read from its config, and its document
# written); each cache's specs get theirs when the Spack catalog loads it (at start).
V7 = [
    """CREATE TABLE "search_docs" (
   "id" INTEGER PRIMARY KEY, "kind" TEXT NOT NULL, "repo" TEXT NOT NULL,
   "key" TEXT NOT NULL, "names" TEXT, "platform" TEXT, "meta" TEXT,
   UNIQUE ("kind", "repo", "key"))""",
    """CREATE VIRTUAL TABLE "search_fts" USING fts5(repo, names, platform, meta,
   content='search_docs', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
    'ALTER TABLE "manifests" ADD COLUMN "labels" TEXT',
    'UPDATE "manifests" SET "described" = 0',
    """INSERT OR REPLACE INTO "meta" ("key", "value") VALUES ('catchup', '1')""",
]

# Version 8: each scanned manifest's summary (index/scans.py): its worst vulnerability,
# counts per level, when scanned and when the row was synced with its result in `_scan/`;
# and each search document's severity (its own, or its children's for an index). The
# catch-up this asks for fills them from the stored results (registry/scan/summary.py).
V8 = [
    """CREATE TABLE "scans" (
   "digest" TEXT PRIMARY KEY, "severity" INTEGER, "counts" TEXT, "packages" INTEGER,
   "scanned_at" REAL, "synced_at" REAL)""",
    'ALTER TABLE "search_docs" ADD COLUMN "severity" INTEGER',
    'CREATE INDEX "idx_search_docs_key" ON "search_docs" ("key")',
    'CREATE INDEX "idx_manifests_digest" ON "manifests" ("digest")',
    'CREATE INDEX "idx_platforms_digest" ON "platforms" ("digest")',
    """INSERT OR REPLACE INTO "meta" ("key", "value") VALUES ('catchup', '1')""",
]

# Version 9: tags by the time they were set, for the dashboard's recent pushes
# (Index.recent_tags walks it newest first and stops once it has enough).
V9 = [
    'CREATE INDEX "idx_tags_updated" ON "tags" ("updated_at")',
]

# MIGRATIONS[n - 1] brings a file to version n
MIGRATIONS: list[list[str]] = [V1, V2, V3, V4, V5, V6, V7, V8, V9]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(Exception):
    """The file holds a schema this code cannot bring to SCHEMA_VERSION."""


class Opened(Enum):
    """What `connect` found at the path."""

    CURRENT = "current"
    MIGRATED = "migrated"
    CREATED = "created"  # no file, or an empty one: contents unknown, fill from storage
    REPLACED = "replaced"  # moved aside: fill from storage


def version_of(conn: sqlite3.Connection) -> int:
    """The file's schema version: 0 for an empty file, 1 for the unversioned original."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise SchemaError("meta table without a schema_version")
        try:
            return int(row[0])
        except ValueError:
            raise SchemaError(f"schema_version {row[0]!r} is not a number") from None
    if not tables:
        return 0
    if "manifests" in tables:
        return 1
    raise SchemaError(f"unknown tables {sorted(tables)}")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file to SCHEMA_VERSION in one transaction; the version it had."""
    conn.execute("BEGIN IMMEDIATE")  # re-read under the lock: another process may migrate
    try:
        found = version_of(conn)
        if found > SCHEMA_VERSION:
            raise SchemaError(f"schema version {found} is newer than this code's "
                              f"{SCHEMA_VERSION}")
        for statements in MIGRATIONS[found:]:
            for sql in statements:
                conn.execute(sql)
        if found < SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                         [str(SCHEMA_VERSION)])
            if found == 0:
                set_meta(conn, "catchup", "1")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are begun and committed explicitly, so a
    # batch of events is exactly one transaction.
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _move_aside(path: str) -> str:
    aside = f"{path}.unusable-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, aside + suffix)
    return aside


def connect(path: str) -> tuple[sqlite3.Connection, Opened]:
    """Open the index file at SCHEMA_VERSION, migrating or replacing it as needed.

    Runs on the index thread (or before any event loop exists): it does file I/O."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path)
        found = migrate(conn)
    except (sqlite3.DatabaseError, SchemaError) as exc:
        if conn is not None:
            conn.close()
        aside = _move_aside(path)
        log.warning("index %s cannot be used (%s): moved to %s; rebuilding from storage",
                    path, exc, aside)
        conn = _connect(path)
        migrate(conn)
        return conn, Opened.REPLACED
    if found == SCHEMA_VERSION:
        return conn, Opened.CURRENT
    if found == 0:
        return conn, Opened.CREATED
    log.info("index %s migrated from schema version %d to %d", path, found, SCHEMA_VERSION)
    return conn, Opened.MIGRATED
