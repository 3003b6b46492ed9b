"""Garbage collection at the core: what is marked, what goes, the lease, and a blob
found to exist while a collection runs (the race every online GC must win)."""

from __future__ import annotations

import asyncio
import json

import pytest
from core_helpers import gc_world
from pushing import store_blob, store_image

from registry.core.gc import GcBusy, collect
from registry.core.grammar import Digest
from registry.storage import paths


async def exists(driver, digest) -> bool:
    try:
        await driver.stat(paths.blob(digest))
        return True
    except Exception:
        return False


async def test_collect_keeps_what_manifests_and_objects_name():
    driver, _watch, _generations, reg = gc_world()
    kept, body = await store_image(reg, "app/a", "v1")
    untagged, _ = await store_image(reg, "app/a", None, note="untagged")  # kept: a manifest
    orphan = await store_blob(reg, "app/a", b"pushed, never named" * 100)
    shared_orphan = await store_blob(reg, "app/b", b"in two repositories")
    await reg.blobs.link("app/c", shared_orphan, len(b"in two repositories"))
    report = await collect(driver, reg, grace=0, propagation=0)
    assert report.deleted == 2 and report.links_removed == 3
    assert not await exists(driver, orphan) and not await exists(driver, shared_orphan)
    assert await exists(driver, kept) and await exists(driver, untagged)
    got = await reg.manifests.get("app/a", "v1")
    assert got.digest == kept
    for desc in json.loads(body)["layers"]:
        assert await reg.blobs.size(Digest.parse(desc["digest"])) is not None
    assert not await reg.blobs.linked("app/c", shared_orphan)
    # Nothing left to do; a dry run changes nothing either.
    again = await collect(driver, reg, grace=0, propagation=0,
                          dry_run=True)
    assert again.deleted == 0


async def test_dry_run_and_grace():
    driver, _watch, _generations, reg = gc_world()
    orphan = await store_blob(reg, "app/a", b"orphan")
    dry = await collect(driver, reg, grace=0, propagation=0, dry_run=True)
    assert dry.deleted == 1 and await exists(driver, orphan)
    young = await collect(driver, reg, grace=3600, propagation=0)
    assert young.deleted == 0 and young.kept_recent == 1 and await exists(driver, orphan)


async def test_one_collector_at_a_time():
    driver, watch, _generations, reg = gc_world()
    first = asyncio.create_task(collect(driver, reg, grace=0,
                                        propagation=1.0))
    while not watch.active:  # until the first collection's lease shows
        await asyncio.sleep(0.02)
        await watch.refresh()
    with pytest.raises(GcBusy):
        await collect(driver, reg, grace=0, propagation=0)
    await first
    await collect(driver, reg, grace=0, propagation=0)  # free again


async def test_a_blob_found_during_the_collection_is_kept():
    """A client checks an old unreferenced blob (HEAD), then pushes a manifest naming
    it: the blob must survive the collection running meanwhile."""
    driver, watch, _generations, reg = gc_world()
    reused = await store_blob(reg, "app/a", b"old layer, about to be reused" * 50)
    lost = await store_blob(reg, "app/a", b"old layer nobody wants" * 50)
    task = asyncio.create_task(collect(driver, reg, grace=0,
                                       propagation=0.6))
    while not watch.active:  # the watch's refresh, as every worker does each second
        await asyncio.sleep(0.05)
        await watch.refresh()
    assert await reg.blobs.size(reused) is not None  # "found to exist"
    report = await task
    assert await exists(driver, reused) and not await exists(driver, lost)
    assert report.kept_seen == 1 and report.deleted == 1
    # The collection is over: the marks are gone, the watch goes quiet.
    await watch.refresh()
    assert not watch.active


async def test_a_garbled_lease_blocks_until_it_would_have_expired(monkeypatch):
    driver, watch, _generations, reg = gc_world()
    await driver.put_content("_gc/lease", b"{half a lea")
    with pytest.raises(GcBusy):
        await collect(driver, reg, grace=0, propagation=0)
    await watch.refresh()
    assert watch.active  # processes mark meanwhile: safe
    import registry.core.gc as gc_module

    monkeypatch.setattr(gc_module, "LEASE_TTL_S", -1.0)  # as if a minute had passed
    report = await collect(driver, reg, grace=0, propagation=0)
    assert report.deleted == 0


async def test_abandoned_upload_sessions_go_with_a_collection():
    import time

    driver, _watch, _generations, reg = gc_world()
    old = await reg.uploads.start("app/a")
    fresh = await reg.uploads.start("app/a")
    for path, (data, _) in list(driver.store.files.items()):
        if old.id in path:
            driver.store.files[path] = (data, time.time() - 7200)
    dry = await collect(driver, reg, grace=0, propagation=0, dry_run=True,
                        uploads_after=3600)
    assert dry.uploads_purged == 0
    report = await collect(driver, reg, grace=0, propagation=0,
                           uploads_after=3600)
    assert report.uploads_purged == 1
    paths_left = " ".join(driver.store.files)
    assert old.id not in paths_left and fresh.id in paths_left
