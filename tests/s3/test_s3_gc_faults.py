"""SeaweedFS killed in the middle of a collection's sweep: the collection fails,
loses nothing it should keep, and the next one finishes the work.

The collector runs in this process over the real S3 driver, so that it can be
stopped at a chosen point of its sweep and run with no grace period (S3 objects
cannot be made to look old)."""

from __future__ import annotations

import json

import pytest
from pushing import core_digest, store_blob
from seaweed import ACCESS_KEY, SECRET_KEY

from registry.core.cache import Generations
from registry.core.factory import CoreSettings, build_registry
from registry.core.gc import GcWatch, collect
from registry.core.grammar import Digest
from registry.storage.base import CheckedDriver
from registry.storage.driver import StorageError
from registry.storage.s3 import S3Driver

BUCKET = "gcfaults"
MT = "application/vnd.oci.image.manifest.v1+json"


async def test_store_killed_mid_sweep_then_the_next_collection_finishes(own_seaweed):
    raw = S3Driver(BUCKET, endpoint_url=own_seaweed.endpoint, access_key=ACCESS_KEY,
                   secret_key=SECRET_KEY, janitor=False, attempts=1)
    driver = CheckedDriver(raw)
    watch, generations = GcWatch(driver), Generations()
    reg = build_registry(driver, settings=CoreSettings(gc_watch=watch, shared_store=True),
                         generations=generations)
    try:
        config, layer = b'{"os":"linux"}', b"the layer an image names" * 1000
        for data in (config, layer):
            await store_blob(reg, "app/a", data)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MT,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": str(core_digest(config)), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": str(core_digest(layer)), "size": len(layer)}]}).encode()
        await reg.manifests.put("app/a", "v1", manifest, MT)
        await store_blob(reg, "app/old", config)
        orphans = [await store_blob(reg, "app/old", b"orphan %d " % i * 500) for i in range(30)]
        named: list[bytes] = []

        def image_of(digest: str, size: int) -> bytes:
            return json.dumps({
                "schemaVersion": 2, "mediaType": MT,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": str(core_digest(config)), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": digest, "size": size}]}).encode()

        # The store dies after the collector has trashed a few blobs, the last one
        # just as a push named it: the check that would have put it back never ran.
        real_move, moved = raw.move, []

        async def move_then_die(source: str, target: str) -> None:
            if target.startswith("_gc/trash/") and len(moved) == 4:
                victim = Digest.parse("sha256:" + source.rsplit("/", 1)[1])
                size = await reg.blobs.size(victim)
                named.append(image_of(str(victim), size))
                await reg.manifests.put("app/old", "rescued", named[0], MT)
            await real_move(source, target)
            if target.startswith("_gc/trash/"):
                moved.append(target)
                if len(moved) == 5:
                    own_seaweed.kill()

        raw.move = move_then_die
        with pytest.raises(StorageError):
            await collect(driver, reg, grace=0, propagation=0)
        assert len(moved) == 5
        raw.move = real_move

        own_seaweed.start()
        # The next collection (the lease its predecessor could not release is this
        # process's own) puts the trash back, judges it again, and finishes.
        report = await collect(driver, reg, grace=0, propagation=0)
        assert report.deleted == len(orphans) - 5  # four went before, one is named
        assert own_seaweed.keys(BUCKET, "_gc/trash/") == []
        assert own_seaweed.keys(BUCKET, "_gc/lease") == []
        rescued = await reg.manifests.get("app/old", "rescued")
        assert rescued.data == named[0]
        victim = Digest.parse(json.loads(named[0])["layers"][0]["digest"])
        assert await reg.blobs.size(victim) is not None
        for orphan in orphans:
            assert (await reg.blobs.size(orphan) is None) == (orphan != victim)
        got = await reg.manifests.get("app/a", "v1")
        assert got.data == manifest
        for data in (config, layer):
            assert await reg.blobs.read(core_digest(data)) == data
        again = await collect(driver, reg, grace=0, propagation=0)
        assert again.deleted == 0
    finally:
        await raw.close()


async def test_two_replicas_one_collector_pushes_on_the_other_lose_nothing(seaweed):
    """Replica A collects (no grace) while replica B reuses old unreferenced blobs in
    new images: B sees A's lease through the store, marks what it finds, and loses
    nothing; B's own collection is refused meanwhile."""
    import asyncio
    import uuid

    from registry.core.gc import GcBusy

    bucket = f"gc-{uuid.uuid4().hex[:8]}"
    replicas = []
    for _ in range(2):
        raw = S3Driver(bucket, endpoint_url=seaweed.endpoint, access_key=ACCESS_KEY,
                       secret_key=SECRET_KEY, janitor=False)
        driver = CheckedDriver(raw)
        watch, generations = GcWatch(driver), Generations()
        reg = build_registry(driver, settings=CoreSettings(gc_watch=watch, shared_store=True),
                             generations=generations)
        replicas.append((raw, driver, watch, generations, reg))
    watches = [asyncio.create_task(r[2].run(period=0.2)) for r in replicas]
    (_, a_driver, _, _a_gen, a), (_, b_driver, b_watch, _b_gen, b) = replicas
    try:
        config = b'{"os":"linux"}'
        await store_blob(a, "base/old", config)
        old = [await store_blob(a, "base/old", b"old layer %d " % i * 300) for i in range(12)]
        lost = [await store_blob(a, "base/old", b"unwanted %d " % i * 300) for i in range(6)]
        collection = asyncio.create_task(collect(a_driver, a, grace=0, propagation=1.0))
        for _ in range(200):  # B's watch reads the lease from the store
            if b_watch.active:
                break
            await asyncio.sleep(0.05)
        assert b_watch.active
        with pytest.raises(GcBusy):
            await collect(b_driver, b, grace=0, propagation=0)

        async def reuse(i: int) -> bytes:
            # A client checks the old layer exists, mounts it, pushes an image naming it.
            repo = f"app/n{i}"
            digest = old[i]
            size = await b.blobs.size(digest)
            assert size is not None, "collected while being checked"
            await b.blobs.link(repo, digest, size)
            await b.blobs.link(repo, core_digest(config), len(config))
            body = json.dumps({
                "schemaVersion": 2, "mediaType": MT,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": str(core_digest(config)), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": str(digest), "size": size}]}).encode()
            await b.manifests.put(repo, "v1", body, MT)
            return body

        bodies = await asyncio.gather(*(reuse(i) for i in range(len(old))))
        report = await collection
        assert report.deleted == len(lost)  # the reused ones: named or seen, kept
        for i, body in enumerate(bodies):
            got = await a.manifests.get(f"app/n{i}", "v1")
            assert got.data == body
            assert await a.blobs.size(old[i]) is not None
        for digest in lost:
            assert await a.blobs.size(digest) is None
    finally:
        for task in watches:
            task.cancel()
        for raw, *_ in replicas:
            await raw.close()
