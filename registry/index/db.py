"""The SQLite index: everything in it is derived from storage and rebuildable.

sqlite-utils is synchronous, so every call runs on one dedicated thread and
the event loop only awaits futures. Tables:

    manifests  (repo, digest) media type, size, artifact type, subject, annotations
    tags       (repo, tag) -> digest
    platforms  (repo, digest, declared_by, os, architecture, variant) per image manifest,
               from its config (declared_by = itself), and per index child, from the
               index's descriptor (declared_by = the index)
    blob_refs  (repo, manifest, blob) which manifests use which blobs (config, layers)
    blobs      (repo, digest) size: blobs linked into a repository
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlite_utils

SCHEMA_VERSION = 1
PLATFORM_PK = ("repo", "digest", "declared_by", "os", "architecture", "variant")


def _platform_of_config(config: bytes | None) -> dict[str, Any] | None:
    if not config:
        return None
    try:
        doc = json.loads(config)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("architecture"), str):
        return None
    return {
        "os": str(doc.get("os", "")),
        "architecture": doc["architecture"],
        "variant": str(doc.get("variant", "") or ""),
        "os_version": str(doc.get("os.version", "") or ""),
    }


class Index:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index")
        self._db: sqlite_utils.Database | None = None

    # -- thread plumbing -----------------------------------------------------

    async def _run(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    def _conn(self) -> sqlite_utils.Database:
        if self._db is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._db = sqlite_utils.Database(conn)
            self._create(self._db)
        return self._db

    @staticmethod
    def _create(db: sqlite_utils.Database) -> None:
        db["manifests"].create({
            "repo": str, "digest": str, "media_type": str, "artifact_type": str,
            "size": int, "subject": str, "annotations": str, "config_digest": str,
            "pushed_at": float,
        }, pk=("repo", "digest"), if_not_exists=True)
        db["tags"].create({"repo": str, "tag": str, "digest": str, "updated_at": float},
                          pk=("repo", "tag"), if_not_exists=True)
        db["platforms"].create({
            "repo": str, "digest": str, "declared_by": str, "os": str, "architecture": str,
            "variant": str, "os_version": str, "source": str,
        }, pk=PLATFORM_PK, if_not_exists=True)
        db["blob_refs"].create({"repo": str, "manifest": str, "blob": str, "media_type": str,
                                "size": int}, pk=("repo", "manifest", "blob"),
                               if_not_exists=True)
        db["blobs"].create({"repo": str, "digest": str, "size": int},
                           pk=("repo", "digest"), if_not_exists=True)
        db["blob_refs"].create_index(["blob"], if_not_exists=True)
        db["manifests"].create_index(["subject"], if_not_exists=True)
        db["tags"].create_index(["repo", "digest"], if_not_exists=True)

    @classmethod
    def prepare(cls, path: str | Path) -> None:
        """Create the file and schema synchronously, before worker processes fork,
        so that they never race each other creating tables and indexes."""
        index = cls(path)
        index._conn()
        index._db.conn.close()
        index._pool.shutdown()

    async def open(self) -> None:
        await self._run(self._conn)

    async def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.conn.close()
                self._db = None

        await self._run(_close)
        self._pool.shutdown(wait=True)

    # -- writes --------------------------------------------------------------

    def _record_manifest(self, repo: str, digest: str, manifest, size: int,
                         tag: str | None, config: bytes | None) -> None:
        db = self._conn()
        now = time.time()
        with db.conn:
            db["manifests"].upsert({
                "repo": repo, "digest": digest, "media_type": manifest.media_type,
                "artifact_type": manifest.effective_artifact_type or "", "size": size,
                "subject": str(manifest.subject.digest) if manifest.subject else "",
                "annotations": json.dumps(manifest.annotations or {}),
                "config_digest": str(manifest.config.digest) if manifest.config else "",
                "pushed_at": now,
            }, pk=("repo", "digest"))
            db["blob_refs"].upsert_all([
                {"repo": repo, "manifest": digest, "blob": str(d.digest),
                 "media_type": d.media_type, "size": d.size} for d in manifest.blobs
            ], pk=("repo", "manifest", "blob"))
            rows = []
            platform = _platform_of_config(config)
            if platform:
                rows.append({"repo": repo, "digest": digest, "declared_by": digest,
                             "source": "config", **platform})
            for child in manifest.manifests:
                p = child.platform or {}
                if p:
                    rows.append({
                        "repo": repo, "digest": str(child.digest), "declared_by": digest,
                        "source": "index",
                        "os": str(p.get("os", "")), "architecture": str(p.get("architecture", "")),
                        "variant": str(p.get("variant", "") or ""),
                        "os_version": str(p.get("os.version", "") or ""),
                    })
            if rows:
                db["platforms"].upsert_all(rows, pk=PLATFORM_PK)
            if tag:
                db["tags"].upsert({"repo": repo, "tag": tag, "digest": digest,
                                   "updated_at": now}, pk=("repo", "tag"))

    def _delete_manifest(self, repo: str, digest: str) -> None:
        db = self._conn()
        with db.conn:
            for table, col in (("manifests", "digest"), ("blob_refs", "manifest"),
                               ("platforms", "declared_by"), ("tags", "digest")):
                db.execute(f"DELETE FROM {table} WHERE repo = ? AND {col} = ?", [repo, digest])

    def _delete_tag(self, repo: str, tag: str) -> None:
        db = self._conn()
        with db.conn:
            db.execute("DELETE FROM tags WHERE repo = ? AND tag = ?", [repo, tag])

    def _link_blob(self, repo: str, digest: str, size: int) -> None:
        db = self._conn()
        with db.conn:
            db["blobs"].upsert({"repo": repo, "digest": digest, "size": size},
                               pk=("repo", "digest"))

    def _unlink_blob(self, repo: str, digest: str) -> None:
        db = self._conn()
        with db.conn:
            db.execute("DELETE FROM blobs WHERE repo = ? AND digest = ?", [repo, digest])

    def _set_tag(self, repo: str, tag: str, digest: str) -> None:
        db = self._conn()
        with db.conn:
            db["tags"].upsert({"repo": repo, "tag": tag, "digest": digest,
                               "updated_at": time.time()}, pk=("repo", "tag"))

    def _clear(self) -> None:
        db = self._conn()
        with db.conn:
            for table in ("manifests", "tags", "platforms", "blob_refs", "blobs"):
                db.execute(f"DELETE FROM {table}")

    async def record_manifest(self, repo, digest, manifest, size, tag, config) -> None:
        await self._run(self._record_manifest, repo, str(digest), manifest, size, tag, config)

    async def delete_manifest(self, repo: str, digest: str) -> None:
        await self._run(self._delete_manifest, repo, digest)

    async def delete_tag(self, repo: str, tag: str) -> None:
        await self._run(self._delete_tag, repo, tag)

    async def link_blob(self, repo: str, digest: str, size: int) -> None:
        await self._run(self._link_blob, repo, digest, size)

    async def unlink_blob(self, repo: str, digest: str) -> None:
        await self._run(self._unlink_blob, repo, digest)

    async def set_tag(self, repo: str, tag: str, digest: str) -> None:
        await self._run(self._set_tag, repo, tag, digest)

    async def clear(self) -> None:
        await self._run(self._clear)

    # -- reads ---------------------------------------------------------------

    async def query(self, sql: str, params: list | tuple = ()) -> list[dict[str, Any]]:
        def _q() -> list[dict[str, Any]]:
            return list(self._conn().query(sql, params))

        return await self._run(_q)


class IndexHooks:
    """Keeps the index current after each storage write (see core.hooks)."""

    def __init__(self, index: Index) -> None:
        self.index = index

    async def manifest_put(self, repo, digest, manifest, size, tag, config) -> None:
        await self.index.record_manifest(repo, digest, manifest, size, tag, config)

    async def manifest_deleted(self, repo, digest) -> None:
        await self.index.delete_manifest(repo, str(digest))

    async def tag_deleted(self, repo, tag) -> None:
        await self.index.delete_tag(repo, tag)

    async def blob_linked(self, repo, digest, size) -> None:
        await self.index.link_blob(repo, str(digest), size)

    async def blob_unlinked(self, repo, digest) -> None:
        await self.index.unlink_blob(repo, str(digest))

    def manifest_pulled(self, repo, digest) -> None:
        return None  # recorded once the index keeps read events

    def blob_pulled(self, repo, digest) -> None:
        return None
