"""The OCI path and /api/v1/resolve tell the decorators below them which host the client
named (arch.request.client_host), so one with a host of its own (a host-aware node
cache) leaves the choice to the client's host; requests without the header name none."""

from __future__ import annotations

import json

from pushing import OCI_INDEX, OCI_MANIFEST, manifest_doc, store_blob

from registry.arch.host import Host
from registry.arch.request import client_host
from registry.core.decorators import ManifestsDecorator
from registry.core.types import StoredManifest


class Seen(ManifestsDecorator):
    """Remembers the host the request had named at each manifest look-up."""

    hosts: list[Host | None]

    async def get(self, repo: str, reference: str, with_body: bool = True) -> StoredManifest:
        self.hosts.append(client_host.get())
        return await self.inner.get(repo, reference, with_body)


async def test_the_clients_host_reaches_the_decorators(app) -> None:
    client, dispatcher = app
    reg = dispatcher.ctx.registry
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    await store_blob(reg, "app", config)
    await store_blob(reg, "app", b"layer")
    child = json.dumps(manifest_doc(config, [b"layer"])).encode()
    digest, _ = await reg.manifests.put("app", "child", child, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(child),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    await reg.manifests.put("app", "latest", index, OCI_INDEX)
    seen = Seen(reg.manifests)
    seen.hosts = []
    reg.manifests = seen

    r = await client.get("/v2/app/manifests/latest", headers={"Registry-Host": "target=zen3"})
    assert r.status == 200 and r.headers["Docker-Content-Digest"] == str(digest)
    assert seen.hosts and {h.target if h else None for h in seen.hosts} == {"zen3"}
    seen.hosts.clear()
    r = await client.get("/api/v1/resolve/app:latest?target=haswell")
    assert r.status == 200 and (await r.json())["digest"] == str(digest)
    assert seen.hosts and {h.target if h else None for h in seen.hosts} == {"haswell"}
    seen.hosts.clear()
    r = await client.get("/v2/app/manifests/latest")
    assert r.headers["Docker-Content-Digest"] != str(digest) and seen.hosts == [None]
