"""Blobs, manifests, uploads and referrers, called directly over the memory driver."""

from __future__ import annotations

import dataclasses
import json

import pytest
from core_helpers import delta, ops
from pushing import OCI_MANIFEST, chunks, core_digest, manifest_doc, store_blob, store_image

from registry.core.decorators import BlobsDecorator
from registry.core.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestUnknown,
    RangeNotSatisfiable,
    RangeUnsatisfiable,
)
from registry.core.factory import CoreSettings, build_registry
from registry.core.serving import BlobPlan, ByteStream, LocalFile
from registry.storage.memory import MemoryDriver


async def read_all(plan) -> bytes:
    assert isinstance(plan.body, ByteStream)
    return b"".join([c async for c in plan.body.chunks])


async def test_serve_plans(reg):
    data = bytes(range(256)) * 100
    digest = await store_blob(reg, "a", data)
    plan = await reg.blobs.serve("a", digest)
    assert (plan.size, plan.range) == (len(data), None)
    assert await read_all(plan) == data
    plan = await reg.blobs.serve("a", digest, "bytes=10-19")
    assert (plan.offset, plan.length) == (10, 10) and await read_all(plan) == data[10:20]
    head = await reg.blobs.serve("a", digest, with_body=False)
    assert head.body is None and head.size == len(data)
    with pytest.raises(RangeUnsatisfiable) as exc:
        await reg.blobs.serve("a", digest, f"bytes={len(data)}-")
    assert exc.value.size == len(data)
    with pytest.raises(BlobUnknown):  # stored, but not linked into this repository
        await reg.blobs.serve("b", digest)


async def test_manifest_life_cycle(reg):
    digest, body = await store_image(reg, "app", "v1")
    got = await reg.manifests.get("app", "v1")
    assert (got.digest, got.data) == (digest, body)
    assert await reg.tags.pointing_at("app", digest) == ["v1"]
    await reg.manifests.delete("app", str(digest))
    with pytest.raises(ManifestUnknown):
        await reg.manifests.get("app", "v1")
    assert await reg.tags.list("app") == []


async def test_manifest_needs_its_blobs_in_the_repository(reg):
    await store_image(reg, "one", "v1")
    _, body = await store_image(reg, "one", None, note="x")
    with pytest.raises(ManifestBlobUnknown):
        await reg.manifests.put("two", "v1", body, "application/vnd.oci.image.manifest.v1+json")


async def test_referrers_follow_pushes_and_deletes(reg):
    subject, body = await store_image(reg, "app", "v1")
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": str(subject), "size": len(body)}
    referrer, _ = await store_image(reg, "app", None, note="sbom", subject=desc)
    found = await reg.referrers.list("app", subject)
    assert [d["digest"] for d in found] == [str(referrer)]
    await reg.manifests.delete("app", str(referrer))
    assert await reg.referrers.list("app", subject) == []


async def test_out_of_order_chunk_says_where_the_upload_stands(reg):
    status = await reg.uploads.start("app")
    await reg.uploads.append("app", status.id, chunks(b"abc"), (0, 2))
    with pytest.raises(RangeNotSatisfiable) as exc:
        await reg.uploads.append("app", status.id, chunks(b"xyz"), (5, 7))
    assert (exc.value.upload_id, exc.value.offset) == (status.id, 3)
    await reg.uploads.cancel("app", status.id)
    with pytest.raises(BlobUploadUnknown):
        await reg.uploads.finish("app", status.id, core_digest(b"abc"))


async def test_decorators_wrap_the_services(driver):
    """A decorator swaps a service for a wrapper of the same Protocol; the rest of
    the registry is untouched."""
    served = []

    class Watching(BlobsDecorator):
        async def serve(self, repo, digest, range_header=None, with_body=True):
            served.append((repo, str(digest)))
            return await self.inner.serve(repo, digest, range_header, with_body)

    def watch(reg):
        return dataclasses.replace(reg, blobs=Watching(reg.blobs))

    reg = build_registry(driver, decorators=[watch])
    digest = await store_blob(reg, "a", b"payload")
    assert await read_all(await reg.blobs.serve("a", digest)) == b"payload"
    assert served == [("a", str(digest))]


async def test_mirror_stores_a_manifest_without_its_blobs(reg):
    """A node cache stores an upstream's manifest before any of its blobs are here."""
    source = build_registry(MemoryDriver())
    digest, body = await store_image(source, "up", "v1", note="mirrored")
    with pytest.raises(ManifestBlobUnknown):  # a push needs the blobs...
        await reg.manifests.put("app", "v1", body, "application/vnd.oci.image.manifest.v1+json")
    await reg.manifests.mirror("app", digest, body, None, "v1")  # ...a mirror does not
    got = await reg.manifests.get("app", "v1")
    assert (got.digest, got.data, got.stale) == (digest, body, False)
    assert await reg.tags.pointing_at("app", digest) == ["v1"]
    with pytest.raises(DigestInvalid):
        await reg.manifests.mirror("app", core_digest(b"other"), body, None)


async def test_plan_close_tells_its_maker_once(reg):
    calls = []
    plan = BlobPlan(core_digest(b"x"), 1, None, LocalFile(-1, None, lambda: calls.append(1)))
    await plan.close()
    await plan.close()
    assert calls == [1]


@pytest.mark.parametrize("shared_store", [False, True])
async def test_a_blob_named_many_times_is_checked_once(driver, shared_store):
    """A manifest naming one layer 2,000 times (as tests/api's large-manifest test
    does) costs the store what naming it once does. On a shared store (S3 replicas:
    no caches) each check was a round trip, and 4,000 of them in a row outlasted a
    client's timeout."""
    config, layer = b'{"os":"linux"}', b"the one layer"
    settings = CoreSettings(shared_store=shared_store)
    for data in (config, layer):
        await store_blob(build_registry(driver, settings=settings), "many/layers", data)

    async def cost(times: int) -> dict[str, int]:
        reg = build_registry(driver, settings=settings)  # caches as cold as the last time
        body = json.dumps(manifest_doc(config, [layer] * times)).encode()
        before = ops(driver)
        await reg.manifests.put("many/layers", f"x{times}", body, OCI_MANIFEST)
        return delta(before, ops(driver))

    assert await cost(2_000) == await cost(1)
