"""Pushes and pulls never wait on SQLite: with the index thread stuck, every request
is still answered; the queued events reach the index once it is free."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from pushing import digest_of

from registry.core.indexing import catch_up
from registry.index.hooks import IndexHooks
from registry.index.records import TagDeleted

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"



@pytest.fixture
def parts(app):
    """(client, the app's IndexHooks, its Registry), from conftest's in-process `app`."""
    client, dispatcher = app
    reg = dispatcher.ctx.registry
    manifests = getattr(reg.manifests, "inner", reg.manifests)  # below the spack decorator
    hooks = manifests.hooks
    while hasattr(hooks, "inner"):  # below the scan and trust rooms' feeds
        hooks = hooks.inner
    return client, hooks, reg


async def test_requests_are_answered_while_the_index_thread_is_stuck(parts):
    client, hooks, _ = parts
    assert isinstance(hooks, IndexHooks)
    index = hooks.index
    await hooks.flush()
    release = threading.Event()
    index._pool.submit(release.wait, 30)  # the index thread is busy until released
    try:
        async def push_and_pull() -> str:
            repo, config, layer = "off/path", b"{}", b"layer bytes"
            for blob in (config, layer):
                r = await client.post(f"/v2/{repo}/blobs/uploads/?digest={digest_of(blob)}",
                                      data=blob)
                assert r.status == 201
            doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                         "digest": digest_of(config), "size": len(config)},
                              "layers": [{"mediaType": "application/x-tar",
                                          "digest": digest_of(layer), "size": len(layer)}]})
            r = await client.put(f"/v2/{repo}/manifests/v1", data=doc,
                                 headers={"Content-Type": OCI_MANIFEST})
            assert r.status == 201
            r = await client.get(f"/v2/{repo}/manifests/v1")
            assert r.status == 200
            r = await client.get(f"/v2/{repo}/blobs/{digest_of(layer)}")
            assert r.status == 200 and await r.read() == layer
            return digest_of(doc.encode())

        digest = await asyncio.wait_for(push_and_pull(), 10)
    finally:
        release.set()
    await hooks.flush()
    assert [m.digest for m in await index.manifests("off/path")] == [digest]
    assert [t.tag for t in await index.tags("off/path")] == ["v1"]
    assert len(await index.blobs("off/path")) == 2


async def push(client, repo: str, ref: str, note: str) -> str:
    config = json.dumps({"note": note}).encode()
    r = await client.post(f"/v2/{repo}/blobs/uploads/?digest={digest_of(config)}", data=config)
    assert r.status == 201
    doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": digest_of(config), "size": len(config)}, "layers": []})
    r = await client.put(f"/v2/{repo}/manifests/{ref}", data=doc,
                         headers={"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    return digest_of(doc.encode())


async def test_a_catch_up_pass_never_undoes_a_push_it_raced(parts):
    client, hooks, reg = parts
    repo = "race/repo"
    first = await push(client, repo, "v1", "first")
    await hooks.flush()
    await hooks.index.apply([TagDeleted(repo, "v1")])  # something for the pass to repair
    real, calls, moved = reg.tags.targets, [], []

    async def racing(name: str):
        targets = await real(name)  # the pass has read v1 -> first...
        calls.append(name)
        if not moved:  # ...then a push moves v1, and its hook event is applied
            moved.append(await push(client, repo, "v1", "second"))
            await hooks.flush()
        return targets

    reg.tags.targets = racing
    await catch_up(reg, hooks.index, hooks)
    await hooks.flush()
    assert [(t.tag, t.digest) for t in await hooks.index.tags(repo)] == [("v1", moved[0])]
    assert moved[0] != first and len(calls) == 2  # the stale diff was computed again
