"""The access step runs for every family, before any handler and before 100 Continue."""

from __future__ import annotations

import asyncio

from registry.api.access import Scope
from registry.core.errors import Denied


class Recorder:
    """Refuses pushes and deletes (lets pulls and listings through); remembers every
    scope it was asked about."""

    def __init__(self) -> None:
        self.seen: list[Scope] = []

    async def check(self, request, scope: Scope) -> None:
        self.seen.append(scope)
        if scope.action not in ("pull", "browse"):
            raise Denied(detail={"scope": scope.resource})

    def allowed(self, request, scope: Scope) -> bool:
        return scope.action == "pull"

    def puller(self, request):
        return lambda name: True

    def rights_key(self, request):
        return None

    def done(self, request, scope: Scope, status: int) -> None:
        return None

    def owner(self, request) -> str | None:
        return None


async def test_every_family_asks_the_access_step(app):
    client, dispatcher = app
    dispatcher.access = rec = Recorder()
    assert (await client.get("/v2/")).status == 200
    assert (await client.get("/api/v1/")).status == 200
    assert (await client.get("/ui/")).status == 200
    r = await client.post("/v2/team/app/blobs/uploads/")
    assert r.status == 403 and (await r.json())["errors"][0]["code"] == "DENIED"
    r = await client.put("/s3/cache/key", data=b"x")
    assert r.status == 403 and b"<Code>AccessDenied</Code>" in await r.read()
    assert (await client.delete("/v2/team/app/manifests/latest")).status == 403
    assert Scope("oci", "team/app", "push") in rec.seen
    assert Scope("oci", "team/app", "delete") in rec.seen
    assert Scope("s3", "cache", "push") in rec.seen
    assert Scope("oci", "", "pull") in rec.seen
    assert {s.family for s in rec.seen} >= {"oci", "api", "ui", "s3"}


async def test_refusal_comes_before_100_continue(app):
    """A refused client is told so instead of `100 Continue`, so it never sends its body."""
    client, dispatcher = app
    dispatcher.access = Recorder()
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /v2/a/blobs/uploads/?digest=sha256:" + b"0" * 64 + b" HTTP/1.1\r\n"
                 b"Host: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status.startswith(b"HTTP/1.1 403"), status


async def test_allowed_upload_gets_100_continue(app):
    client, _ = app
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 0\r\nExpect: 100-continue\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status.startswith(b"HTTP/1.1 100"), status
