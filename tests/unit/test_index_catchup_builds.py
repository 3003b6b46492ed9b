"""Stores written before the index had builds get their rows without a push: from the
catch-up a migrated index file asks for, and from `registry reindex` (core/indexing.py
over the core services on the memory driver)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from pushing import manifest_doc, store_blob

from registry.arch.indexed import describer
from registry.core.factory import build_registry
from registry.core.indexing import catch_up, rebuild
from registry.index import schema
from registry.index.db import Index
from registry.storage.memory import MemoryDriver

ARCH = "io.github.registry.arch."


@pytest.fixture
def reg():
    """The core services over the memory driver, telling no index of their writes."""
    return build_registry(MemoryDriver())


async def store(reg, repo: str, arch: str, variant: str, target: str | None = None) -> str:
    """An image put through the core services (no index is told): its digest."""
    config = json.dumps({"architecture": arch, "variant": variant, "os": "linux"}).encode()
    layer = f"layer {arch} {variant}".encode()
    await store_blob(reg, repo, config)
    await store_blob(reg, repo, layer)
    body = json.dumps(manifest_doc(config, [layer], annotations={ARCH + "target": target}
                                   if target else None)).encode()
    digest, _ = await reg.manifests.put(repo, variant or arch, body,
                                        "application/vnd.oci.image.manifest.v1+json")
    return str(digest)


def to_version_3(path) -> None:
    """Replace the file by what version 3 of the schema made (its own migrations, so later
    versions' tables never leak in), holding the same manifests, tags and blobs."""
    current = path.with_suffix(".current")
    path.rename(current)
    conn = sqlite3.connect(path)
    for statements in schema.MIGRATIONS[:3]:
        for sql in statements:
            conn.execute(sql)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    conn.execute("ATTACH DATABASE ? AS current", [str(current)])
    for table in ("manifests", "tags", "platforms", "blob_refs", "blobs"):
        columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA main.table_info({table})"))
        conn.execute(f"INSERT INTO main.{table} ({columns}) "
                     f"SELECT {columns} FROM current.{table}")
    conn.commit()
    conn.close()


async def test_a_version_3_index_is_described_by_the_catch_up_it_asks_for(reg, tmp_path):
    path = tmp_path / "index.sqlite"
    zen3 = await store(reg, "hpc/app", "amd64", "v3", "zen3")
    v2 = await store(reg, "hpc/app", "amd64", "v2")
    old = Index(path)  # the previous code: no describer
    await old.open()
    await catch_up(reg, old)
    await old.close()
    to_version_3(path)

    index = Index(path, describer)
    await index.open()
    try:
        assert index.opened is schema.Opened.MIGRATED and index.dirty
        assert await index.undescribed("hpc/app") == {zen3, v2}
        stats = await catch_up(reg, index)
        assert (stats.described, stats.manifests) == (2, 0)  # described, not re-added
        [row] = await index.builds("hpc/app", zen3)
        assert (row.target, row.sources["target"]) == ("zen3", "annotation")
        [row] = await index.builds("hpc/app", v2)
        assert row.target == "x86_64_v2"
        assert await index.undescribed("hpc/app") == set()
        assert not (await catch_up(reg, index)).changed  # once
    finally:
        await index.close()


async def test_reindex_describes_a_store_written_without_an_index(reg, tmp_path):
    digest = await store(reg, "hpc/app", "arm64", "", "neoverse_v2")
    index = Index(tmp_path / "index.sqlite", describer)
    await index.open()
    try:
        stats = await rebuild(reg, index)
        assert stats.manifests == 1
        [row] = await index.builds("hpc/app", digest)
        assert (row.architecture, row.target, row.error) == ("arm64", "neoverse_v2", None)
    finally:
        await index.close()
