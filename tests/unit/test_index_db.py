"""The index on its own: schema versions and migrations, named queries, the dirty
flag, and hooks that never make a request wait on SQLite."""

from __future__ import annotations

import asyncio
import inspect
import os
import sqlite3
import threading
from dataclasses import dataclass, field

import pytest

from registry.index import schema
from registry.index.db import Index
from registry.index.hooks import IndexHooks
from registry.index.records import ManifestPut, TagSet

# Exactly what the version 1 code (no meta table) created: data, not code, so a
# later edit of schema.V1 cannot make this test agree with itself.
V1_DDL = """
CREATE TABLE "manifests" (
   "repo" TEXT,
   "digest" TEXT,
   "media_type" TEXT,
   "artifact_type" TEXT,
   "size" INTEGER,
   "subject" TEXT,
   "annotations" TEXT,
   "config_digest" TEXT,
   "pushed_at" REAL,
   PRIMARY KEY ("repo", "digest")
);
CREATE TABLE "tags" (
   "repo" TEXT,
   "tag" TEXT,
   "digest" TEXT,
   "updated_at" REAL,
   PRIMARY KEY ("repo", "tag")
);
CREATE TABLE "platforms" (
   "repo" TEXT,
   "digest" TEXT,
   "declared_by" TEXT,
   "os" TEXT,
   "architecture" TEXT,
   "variant" TEXT,
   "os_version" TEXT,
   "source" TEXT,
   PRIMARY KEY ("repo", "digest", "declared_by", "os", "architecture", "variant")
);
CREATE TABLE "blob_refs" (
   "repo" TEXT,
   "manifest" TEXT,
   "blob" TEXT,
   "media_type" TEXT,
   "size" INTEGER,
   PRIMARY KEY ("repo", "manifest", "blob")
);
CREATE TABLE "blobs" (
   "repo" TEXT,
   "digest" TEXT,
   "size" INTEGER,
   PRIMARY KEY ("repo", "digest")
);
CREATE INDEX "idx_blob_refs_blob"
    ON "blob_refs" ("blob");
CREATE INDEX "idx_manifests_subject"
    ON "manifests" ("subject");
CREATE INDEX "idx_tags_repo_digest"
    ON "tags" ("repo", "digest");
"""

M1, M2, CFG, LAYER = ("sha256:" + c * 64 for c in "1234")
OCI = "application/vnd.oci.image.manifest.v1+json"


def v1_file(path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL)
    conn.execute("INSERT INTO manifests VALUES ('app', ?, ?, '', 10, '', '{\"a\": \"b\"}', ?, 1.5)",
                 [M1, OCI, CFG])
    conn.execute("INSERT INTO tags VALUES ('app', 'latest', ?, 2.5)", [M1])
    conn.execute("INSERT INTO blobs VALUES ('app', ?, 7)", [LAYER])
    conn.execute("INSERT INTO blob_refs VALUES ('app', ?, ?, 'x', 7)", [M1, LAYER])
    conn.execute("INSERT INTO platforms VALUES ('app', ?, ?, 'linux', 'amd64', '', '', 'config')",
                 [M1, M1])
    conn.commit()
    conn.close()


@pytest.fixture
async def index(tmp_path):
    idx = Index(tmp_path / "index.sqlite")
    await idx.open()
    yield idx
    await idx.close()


async def test_a_v1_file_is_migrated_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "index.sqlite"
    v1_file(path)
    idx = Index(path)
    await idx.open()
    try:
        # Dirty: version 4 (builds) asks for a catch-up, to describe what is there.
        assert idx.opened is schema.Opened.MIGRATED and idx.dirty
        assert await idx.schema_version() == schema.SCHEMA_VERSION
        [m] = await idx.manifests("app")
        assert (m.digest, m.media_type, m.size, m.annotations, m.config_digest) == \
            (M1, OCI, 10, {"a": "b"}, CFG)
        assert [(t.tag, t.digest) for t in await idx.tags("app")] == [("latest", M1)]
        assert [(b.digest, b.size) for b in await idx.blobs("app")] == [(LAYER, 7)]
        [p] = await idx.platforms("app", M1)
        assert (p.os, p.architecture, p.source) == ("linux", "amd64", "config")
        assert (await idx.blob_usage(LAYER)).used_by == [("app", M1)]
        assert await idx.repositories() == ["app"]
    finally:
        await idx.close()
    # Opening again is a no-op.
    idx = Index(path)
    await idx.open()
    assert idx.opened is schema.Opened.CURRENT and len(await idx.manifests("app")) == 1
    await idx.close()


def test_prepare_migrates_before_workers_fork(tmp_path):
    path = tmp_path / "index.sqlite"
    v1_file(path)
    Index.prepare(path)
    conn = sqlite3.connect(path)
    assert schema.version_of(conn) == schema.SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM manifests").fetchone() == (1,)
    conn.close()


def _set_version(path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", ["newer", "garbage", "unknown tables", "failed migration"])
async def test_an_unusable_file_is_moved_aside_and_marked_for_rebuild(tmp_path, damage):
    path = tmp_path / "index.sqlite"
    if damage == "newer":
        Index.prepare(path)
        _set_version(path, 999)
    elif damage == "garbage":
        path.write_bytes(os.urandom(8192))
    elif damage == "unknown tables":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE something_else (x)")
        conn.close()
    else:  # a "v1" file missing a table the migration needs
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE manifests (repo, digest)")
        conn.execute("CREATE TABLE writers (x)")  # v2 would create it: the migration fails
        conn.close()
    idx = Index(path)
    await idx.open()
    try:
        assert idx.opened is schema.Opened.REPLACED
        assert idx.dirty  # the server's catch-up pass fills it from storage
        assert await idx.schema_version() == schema.SCHEMA_VERSION
        assert await idx.repositories() == []
        assert [p.name for p in tmp_path.iterdir() if ".unusable-" in p.name]
    finally:
        await idx.close()


async def test_writer_rows_are_the_dirty_flag(tmp_path):
    path = tmp_path / "index.sqlite"
    first = Index(path)
    await first.open()
    assert first.dirty  # a new file: contents unknown until a pass fills it
    first.mark_clean(first.dirty_generation)
    await first.close()

    clean = Index(path)
    await clean.open()
    assert not clean.dirty  # closed in order, nothing lost
    # A second live writer (another worker) does not make the index dirty...
    other = Index(path)
    await other.open()
    assert not other.dirty
    await other.close()
    # ...but a row left by a process that is gone does.
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO writers VALUES ('dead', ?, 0)", [_dead_pid()])
    conn.commit()
    conn.close()
    await clean.close()
    after_crash = Index(path)
    await after_crash.open()
    assert after_crash.dirty and "cleanly" in after_crash.dirty_reason
    await after_crash.close()


async def test_a_dirty_close_leaves_the_next_open_dirty(tmp_path):
    path = tmp_path / "index.sqlite"
    idx = Index(path)
    await idx.open()
    idx.mark_clean(idx.dirty_generation)
    idx.mark_dirty()  # e.g. an event dropped, and no catch-up before shutdown
    await idx.close()
    # Same process, new session: the old session is no longer live, so its row is stale.
    nxt = Index(path)
    await nxt.open()
    assert nxt.dirty
    await nxt.close()


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


# -- hooks ------------------------------------------------------------------


@dataclass
class Desc:
    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    annotations: dict | None = None


@dataclass
class FakeManifest:
    """The shape of core.manifest_format.Manifest the index reads."""

    media_type: str = OCI
    config: Desc | None = None
    layers: list[Desc] = field(default_factory=list)
    manifests: list[Desc] = field(default_factory=list)
    subject: Desc | None = None
    annotations: dict = field(default_factory=dict)
    effective_artifact_type: str | None = None

    @property
    def blobs(self) -> list[Desc]:
        return ([self.config] if self.config else []) + self.layers


def image() -> FakeManifest:
    return FakeManifest(config=Desc("application/vnd.oci.image.config.v1+json", CFG, 2),
                        layers=[Desc("application/x-tar", LAYER, 7)],
                        subject=Desc(OCI, M2, 3))


def block(index: Index) -> threading.Event:
    """Occupy the index thread until the returned event is set."""
    release = threading.Event()
    index._pool.submit(release.wait, 30)
    return release


async def test_hooks_return_while_the_index_thread_is_stuck(index):
    hooks = IndexHooks(index)
    release = block(index)
    try:
        # Every hook returns at once although SQLite cannot be reached.
        await asyncio.wait_for(hooks.blob_linked("app", LAYER, 7), 0.5)
        await asyncio.wait_for(hooks.manifest_put("app", M1, image(), 100, "v1",
                                                  b'{"architecture": "arm64", "os": "linux"}'),
                               0.5)
        assert hooks.manifest_pulled("app", M1) is None
    finally:
        release.set()
    await hooks.flush()
    [m] = await index.manifests("app")
    assert (m.digest, m.subject, m.size) == (M1, M2, 100)
    assert [r.digest for r in await index.referrers("app", M2)] == [M1]
    assert [(t.tag, t.digest) for t in await index.tags("app")] == [("v1", M1)]
    assert [(p.architecture, p.source) for p in await index.platforms("app", M1)] == \
        [("arm64", "config")]
    assert (await index.blob_usage(LAYER)).linked_in == ["app"]
    await hooks.manifest_deleted("app", M1)
    await hooks.flush()
    assert await index.manifests("app") == [] and await index.tags("app") == []
    await hooks.close()


def test_read_hooks_are_plain_calls():
    # Called on every GET without an await: they must not be coroutines.
    assert not inspect.iscoroutinefunction(IndexHooks.manifest_pulled)
    assert not inspect.iscoroutinefunction(IndexHooks.blob_pulled)


async def test_read_events_never_touch_sqlite_and_add_up(index):
    hooks = IndexHooks(index, pull_flush_seconds=3600)
    release = block(index)
    try:
        for _ in range(3):
            hooks.manifest_pulled("app", M1)  # returns with the index thread stuck
        hooks.blob_pulled("app", LAYER)
        assert hooks.queued == 0  # counted in memory, nothing queued per GET
    finally:
        release.set()
    await hooks.flush()
    stats = {(s.digest, s.kind): s for s in await index.pull_stats(repo="app")}
    assert stats[(M1, "manifest")].count == 3 and stats[(LAYER, "blob")].count == 1
    first = stats[(M1, "manifest")].last_pulled
    assert first is not None and first > 0
    await asyncio.sleep(0.01)
    hooks.manifest_pulled("app", M1)
    await hooks.flush()
    [again] = await index.pull_stats(digest=M1)
    assert again.count == 4 and again.last_pulled > first  # upserts add the counts
    await hooks.close()


async def test_pull_counts_are_flushed_periodically(index):
    hooks = IndexHooks(index, pull_flush_seconds=0.1)
    hooks.start()
    hooks.manifest_pulled("app", M1)
    for _ in range(100):
        if await index.pull_stats():
            break
        await asyncio.sleep(0.05)
    assert [(s.digest, s.count) for s in await index.pull_stats()] == [(M1, 1)]
    await hooks.close()


async def test_a_full_queue_drops_and_marks_the_index_dirty(index):
    index.mark_clean(index.dirty_generation)
    hooks = IndexHooks(index, max_queued=2)
    release = block(index)
    try:
        for i in range(5):
            await asyncio.wait_for(hooks.blob_linked("app", f"sha256:{i:064x}", i), 0.5)
        assert hooks.dropped >= 2 and index.dirty and index.dirtied.is_set()
    finally:
        release.set()
    await hooks.flush()
    assert len(await index.blobs("app")) <= 3
    await hooks.close()


async def test_a_batch_is_one_transaction_in_order(index):
    await index.apply([TagSet("app", "t", M1, 1.0), TagSet("app", "t", M2, 2.0)])
    assert [t.digest for t in await index.tags("app")] == [M2]
    bad = ManifestPut("app", M1, object(), 1)  # type: ignore[arg-type]  # cannot be applied
    with pytest.raises(AttributeError):
        await index.apply([TagSet("app", "u", M1, 1.0), bad])
    assert [t.tag for t in await index.tags("app")] == ["t"]  # rolled back as a whole


async def test_recent_tags_newest_first_only_in_the_repositories_given(index):
    # Tags set at times 1..100 over ten repositories (0 would mean "now").
    await index.apply([TagSet(f"app{i % 10}", f"t{i}", M1, float(i + 1)) for i in range(100)])
    newest = await index.recent_tags(3)
    assert [(r["repo"], r["tag"]) for r in newest] == [("app9", "t99"), ("app8", "t98"),
                                                        ("app7", "t97")]
    # By name for a few repositories, by time for many: the same answer.
    few = [(r["repo"], r["tag"]) for r in await index.recent_tags(3, ["app0", "app1"])]
    assert few == [("app1", "t91"), ("app0", "t90"), ("app1", "t81")]
    many = [f"zz{i}" for i in range(100)] + ["app0", "app1"]
    assert [(r["repo"], r["tag"]) for r in await index.recent_tags(3, many)] == few
    assert await index.recent_tags(5, []) == []
