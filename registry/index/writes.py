"""Applying index events to SQLite: one function per event type, called on the
index thread inside the batch's transaction (see Index.apply)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from registry.index import scans, schema
from registry.index.builds import image_config
from registry.index.records import (
    BlobLinked,
    BlobUnlinked,
    ManifestDeleted,
    ManifestDescribe,
    ManifestPut,
    PullsSeen,
    ScanForgotten,
    ScanSeen,
    SignaturesSeen,
    SpecDeleted,
    SpecPut,
    SpecRow,
    SpecsReset,
    SpecsThrough,
    TagDeleted,
    TagSet,
)


def _platform_of_config(config: bytes | None) -> dict[str, str] | None:
    doc = image_config(config)
    if doc is None:
        return None
    return {
        "os": str(doc.get("os", "")),
        "architecture": doc["architecture"],
        "variant": str(doc.get("variant", "") or ""),
        "os_version": str(doc.get("os.version", "") or ""),
    }


def _manifest_put(conn: sqlite3.Connection, e: ManifestPut) -> None:
    m = e.manifest
    conn.execute(
        "INSERT OR REPLACE INTO manifests (repo, digest, media_type, artifact_type, size,"
        " subject, annotations, config_digest, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [e.repo, e.digest, m.media_type, m.effective_artifact_type or "", e.size,
         str(m.subject.digest) if m.subject else "", json.dumps(m.annotations or {}),
         str(m.config.digest) if m.config else "", e.at or time.time()])
    conn.executemany(
        "INSERT OR REPLACE INTO blob_refs (repo, manifest, blob, media_type, size)"
        " VALUES (?, ?, ?, ?, ?)",
        [[e.repo, e.digest, str(d.digest), d.media_type, d.size] for d in m.blobs])
    rows = []
    platform = _platform_of_config(e.config)
    if platform:
        rows.append([e.repo, e.digest, e.digest, platform["os"], platform["architecture"],
                     platform["variant"], platform["os_version"], "config"])
    for child in m.manifests:
        p = child.platform or {}
        if p:
            rows.append([e.repo, str(child.digest), e.digest, str(p.get("os", "")),
                         str(p.get("architecture", "")), str(p.get("variant", "") or ""),
                         str(p.get("os.version", "") or ""), "index"])
    conn.executemany(
        "INSERT OR REPLACE INTO platforms (repo, digest, declared_by, os, architecture,"
        " variant, os_version, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if e.tag:
        _tag_set(conn, TagSet(e.repo, e.tag, e.digest, e.at))


def _manifest_deleted(conn: sqlite3.Connection, e: ManifestDeleted) -> None:
    for table, col in (("manifests", "digest"), ("blob_refs", "manifest"),
                       ("platforms", "declared_by"), ("builds", "declared_by"),
                       ("artifacts", "digest"), ("tags", "digest"), ("signatures", "digest")):
        conn.execute(f"DELETE FROM {table} WHERE repo = ? AND {col} = ?", [e.repo, e.digest])


def _tag_set(conn: sqlite3.Connection, e: TagSet) -> None:
    conn.execute("INSERT OR REPLACE INTO tags (repo, tag, digest, updated_at)"
                 " VALUES (?, ?, ?, ?)", [e.repo, e.tag, e.digest, e.at or time.time()])


def _tag_deleted(conn: sqlite3.Connection, e: TagDeleted) -> None:
    conn.execute("DELETE FROM tags WHERE repo = ? AND tag = ?", [e.repo, e.tag])


def _blob_linked(conn: sqlite3.Connection, e: BlobLinked) -> None:
    conn.execute("INSERT OR REPLACE INTO blobs (repo, digest, size) VALUES (?, ?, ?)",
                 [e.repo, e.digest, e.size])


def _blob_unlinked(conn: sqlite3.Connection, e: BlobUnlinked) -> None:
    conn.execute("DELETE FROM blobs WHERE repo = ? AND digest = ?", [e.repo, e.digest])


def _pulls_seen(conn: sqlite3.Connection, e: PullsSeen) -> None:
    conn.executemany(
        "INSERT INTO pulls (repo, digest, kind, count, last_pulled) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (repo, digest, kind) DO UPDATE SET count = count + excluded.count,"
        " last_pulled = max(last_pulled, excluded.last_pulled)",
        [[c.repo, c.digest, c.kind, c.count, c.last_pulled] for c in e.counts])


def _spec_values(r: SpecRow) -> list[Any]:
    return [r.cache, r.hash, r.name, r.version, r.platform, r.os, r.target, r.compiler,
            json.dumps(r.variants, sort_keys=True, default=str),
            json.dumps([list(d) for d in r.dependencies]), r.size, r.format, r.source,
            r.pushed_at]


_SPEC_INSERT = ("INSERT OR REPLACE INTO spack_specs (cache, hash, name, version, platform, os,"
                " target, compiler, variants, dependencies, size, format, source, pushed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _spec_put(conn: sqlite3.Connection, e: SpecPut) -> None:
    conn.execute(_SPEC_INSERT, _spec_values(e.row))


def _spec_deleted(conn: sqlite3.Connection, e: SpecDeleted) -> None:
    conn.execute("DELETE FROM spack_specs WHERE cache = ? AND hash = ?", [e.repo, e.hash])


def _specs_reset(conn: sqlite3.Connection, e: SpecsReset) -> None:
    conn.execute("DELETE FROM spack_specs WHERE cache = ?", [e.repo])
    conn.executemany(_SPEC_INSERT, [_spec_values(r) for r in e.rows])


def _specs_through(conn: sqlite3.Connection, e: SpecsThrough) -> None:
    schema.set_meta(conn, f"spack-through:{e.repo}", e.entry)


def _signatures_seen(conn: sqlite3.Connection, e: SignaturesSeen) -> None:
    conn.execute("DELETE FROM signatures WHERE repo = ? AND digest = ?", [e.repo, e.digest])
    conn.executemany(
        "INSERT OR REPLACE INTO signatures (repo, digest, signature, position, format,"
        " identity, key, valid, reason, detail, checked_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[e.repo, e.digest, r.signature, r.position, r.format, r.identity, r.key,
          int(r.valid), r.reason, r.detail, r.checked_at or time.time()] for r in e.rows])


APPLY: dict[type, Callable[[sqlite3.Connection, Any], None]] = {
    # A ManifestDescribe writes only build rows, which need the index's describer:
    # Index.apply writes them after this table's function, for it and ManifestPut.
    ManifestPut: _manifest_put, ManifestDescribe: lambda conn, e: None,
    ManifestDeleted: _manifest_deleted, TagSet: _tag_set,
    TagDeleted: _tag_deleted, BlobLinked: _blob_linked, BlobUnlinked: _blob_unlinked,
    PullsSeen: _pulls_seen, SpecPut: _spec_put, SpecDeleted: _spec_deleted,
    SpecsReset: _specs_reset, SpecsThrough: _specs_through,
    SignaturesSeen: _signatures_seen,
    ScanSeen: scans.seen, ScanForgotten: scans.forgotten,
}
