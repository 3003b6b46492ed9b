"""The node cache's decorators, in process, over a filesystem store and a tiny fake
upstream (an aiohttp server in this process that counts what it is asked): one
upstream GET per digest however many requests, a corrupt or truncated upstream
blob never served whole nor stored, tags revalidated after their TTL and served
stale when the upstream is down. Under blockbuster like every core test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
from collections import Counter

import pytest
from aiohttp import web
from aiohttp.test_utils import RawTestServer
from harness import wait_for_async

from registry.cache.node import NodeCache
from registry.config import CacheConfig
from registry.core.cache import Generations
from registry.core.errors import (
    BadUpstream,
    BlobUnknown,
    Denied,
    Unsupported,
    UpstreamUnavailable,
)
from registry.core.factory import build_registry
from registry.core.grammar import Digest
from registry.core.growing import WriterFailed
from registry.core.scratch import ScratchSpace
from registry.core.serving import BlobPlan, LocalFile
from registry.storage.base import CheckedDriver
from registry.storage.filesystem import FilesystemDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


class FakeUpstream:
    """Blobs and manifests by digest, tags, and faults: `corrupt` serves wrong bytes,
    `cut` closes the connection half way, `slow` paces the body."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.tags: dict[str, str] = {}
        self.referrers: dict[str, list[dict]] = {}  # subject digest -> descriptors
        self.gets: Counter[str] = Counter()
        self.corrupt = self.cut = False
        self.slow = 0.0
        self.down = False
        self.auth: str | None = None  # "basic" or "bearer": credentials user:pw required
        self.token_requests = 0

    def _refused(self, request: web.BaseRequest) -> web.Response | None:
        basic = "Basic " + base64.b64encode(b"user:pw").decode()
        got = request.headers.get("Authorization")
        if self.auth == "basic" and got != basic:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        if self.auth == "bearer" and request.path == "/token":
            self.token_requests += 1
            if got != basic or request.query.get("scope") != "repository:app:pull":
                return web.Response(status=401)
            return web.json_response({"access_token": "t0k", "expires_in": 300})
        if self.auth == "bearer" and got != "Bearer t0k":
            challenge = (f'Bearer realm="{self.url}/token",service="fake",'
                         'scope="repository:app:pull"')
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET":
            self.gets[request.path] += 1
        if self.down:
            return web.Response(status=503)
        refused = self._refused(request)
        if refused is not None:
            return refused
        parts = request.path.split("/")
        kind, ref = parts[-2], parts[-1]
        if kind == "blobs" and ref in self.blobs:
            data = self.blobs[ref]
            if request.method == "HEAD":
                return web.Response(headers={"Content-Length": str(len(data))})
            resp = web.StreamResponse(headers={"Content-Length": str(len(data))})
            await resp.prepare(request)
            body = bytearray(data)
            if self.corrupt:
                body[len(body) // 2] ^= 0xFF
            piece = 64 << 10
            for start in range(0, len(body), piece):
                if self.cut and start >= len(body) // 2:
                    request.transport.close()
                    return resp
                await resp.write(bytes(body[start:start + piece]))
                if self.slow:
                    await asyncio.sleep(self.slow)
            await resp.write_eof()
            return resp
        if kind == "manifests":
            target = self.tags.get(ref, ref)
            if target in self.manifests:
                media_type = json.loads(self.manifests[target]).get("mediaType", OCI_MANIFEST)
                headers = {"Docker-Content-Digest": target, "ETag": f'"{target}"',
                           "Content-Type": media_type}
                if request.headers.get("If-None-Match") == f'"{target}"':
                    return web.Response(status=304, headers=headers)
                return web.Response(body=self.manifests[target], headers=headers)
        if kind == "referrers":
            return web.json_response({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                      "manifests": self.referrers.get(ref, [])},
                                     content_type=OCI_INDEX)
        if kind == "list":
            return web.json_response({"name": "x", "tags": sorted(self.tags)})
        return web.json_response({"errors": [{"code": "BLOB_UNKNOWN", "message": "no"}]},
                                 status=404)


@pytest.fixture
async def upstream():
    fake = FakeUpstream()
    server = RawTestServer(fake.handle, host="127.0.0.1")
    await server.start_server()
    fake.url = f"http://127.0.0.1:{server.port}"
    yield fake
    await server.close()


@contextlib.asynccontextmanager
async def node_cache(tmp_path, upstream, **settings):
    """(registry with the node cache's decorators, the NodeCache)."""
    config = CacheConfig(upstream=upstream.url, dir=str(tmp_path / "cache"), **settings)
    driver = CheckedDriver(await asyncio.to_thread(FilesystemDriver, config.dir, False))
    generations = Generations()
    node = NodeCache(config, ScratchSpace(driver), fsync=False)
    reg = build_registry(driver, generations=generations, decorators=[node.decorate])
    async with node:
        yield reg, node


@pytest.fixture
async def cache(tmp_path, upstream):
    async with node_cache(tmp_path, upstream) as made:
        yield made


def _follow(plan: BlobPlan) -> bytes:
    """Read a plan's LocalFile as sendfile would: to its length, following progress."""
    assert isinstance(plan.body, LocalFile)
    fd, progress = plan.take_fd(), plan.body.progress
    out = bytearray()
    offset, end = plan.offset, plan.offset + plan.length
    try:
        while offset < end:
            chunk = os.pread(fd, min(1 << 20, end - offset), offset)
            if not chunk:
                assert progress is not None, "file ended early"
                progress.wait_beyond(offset, 10)
                continue
            out += chunk
            offset += len(chunk)
    finally:
        os.close(fd)
    return bytes(out)


async def read_plan(plan: BlobPlan) -> bytes:
    try:
        return await asyncio.to_thread(_follow, plan)
    finally:
        await plan.close()


async def test_concurrent_requests_share_one_fetch(cache, upstream):
    reg, node = cache
    data = os.urandom(5 << 20)
    d = digest(data)
    upstream.blobs[str(d)] = data
    upstream.slow = 0.002
    plans = await asyncio.gather(*[reg.blobs.serve("team/app", d) for _ in range(8)],
                                 reg.blobs.serve("team/app", d, "bytes=4000000-"))
    bodies = await asyncio.gather(*[read_plan(p) for p in plans])
    assert all(b == data for b in bodies[:8])
    assert bodies[8] == data[4000000:]
    assert upstream.gets[f"/v2/team/app/blobs/{d}"] == 1
    # The fetch task stores the blob after the last byte, in the background.
    assert await wait_for_async(lambda: reg.blobs.linked("team/app", d), bool)
    plan = await reg.blobs.serve("team/app", d)  # now local: no progress to follow
    assert isinstance(plan.body, LocalFile) and plan.body.progress is None
    assert await read_plan(plan) == data
    assert upstream.gets[f"/v2/team/app/blobs/{d}"] == 1
    assert node.lru.total == len(data)


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
async def test_bad_upstream_bytes_are_never_served_whole_nor_kept(cache, upstream, fault):
    reg, _ = cache
    data = os.urandom(3 << 20)
    d = digest(data)
    upstream.blobs[str(d)] = data
    setattr(upstream, fault, True)
    plans = await asyncio.gather(*[reg.blobs.serve("a", d) for _ in range(3)])
    for plan in plans:
        with pytest.raises(WriterFailed):
            await read_plan(plan)
    await asyncio.sleep(0.05)  # nothing appears after the failure (absence cannot be polled)
    assert not await reg.blobs.linked("a", d) and await reg.blobs.size(d) is None
    setattr(upstream, fault, False)  # the next request tries again
    assert await read_plan(await reg.blobs.serve("a", d)) == data
    assert upstream.gets[f"/v2/a/blobs/{d}"] == 2


async def test_head_asks_upstream_without_fetching(cache, upstream):
    reg, _ = cache
    data = b"small blob"
    upstream.blobs[str(digest(data))] = data
    plan = await reg.blobs.serve("a", digest(data), with_body=False)
    assert plan.size == len(data) and plan.body is None
    assert sum(upstream.gets.values()) == 0
    with pytest.raises(BlobUnknown):
        await reg.blobs.serve("a", digest(b"nowhere"))


async def test_tags_revalidate_after_ttl_and_go_stale_when_upstream_is_down(cache, upstream):
    reg, _ = cache
    manifests = reg.manifests
    now = [1000.0]
    manifests.clock = lambda: now[0]

    def publish(note: str) -> bytes:
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/json",
                                      "digest": str(digest(b"{}")), "size": 2},
                           "layers": [], "annotations": {"n": note}}).encode()
        upstream.manifests[str(digest(body))] = body
        upstream.tags["v1"] = str(digest(body))
        return body

    first = publish("one")
    got = await manifests.get("app", "v1")
    assert (got.data, got.stale) == (first, False)
    second = publish("two")
    assert (await manifests.get("app", "v1")).data == first  # within the TTL
    now[0] += 61
    assert (await manifests.get("app", "v1")).data == second
    assert upstream.gets["/v2/app/manifests/v1"] == 2
    now[0] += 61
    upstream.down = True
    got = await manifests.get("app", "v1")
    assert (got.data, got.stale) == (second, True)
    asked = upstream.gets["/v2/app/manifests/v1"]
    assert (await manifests.get("app", "v1")).stale  # a moment later: not asked again
    assert upstream.gets["/v2/app/manifests/v1"] == asked
    now[0] += 6
    upstream.down = False
    got = await manifests.get("app", "v1")  # back: fresh again
    assert (got.data, got.stale) == (second, False)
    upstream.down = True
    by_digest = await manifests.get("app", str(digest(first)))  # stored, immutable
    assert by_digest.data == first and not by_digest.stale
    with pytest.raises(UpstreamUnavailable):
        await manifests.get("app", "never-seen")


async def test_writes_are_refused(cache, upstream):
    reg, _ = cache
    with pytest.raises(Unsupported) as info:
        await reg.uploads.start("a")
    assert info.value.status == 405 and upstream.url in info.value.message
    with pytest.raises(Unsupported):
        await reg.manifests.put("a", "v1", b"{}", OCI_MANIFEST)
    with pytest.raises(Unsupported):
        await reg.manifests.delete("a", "v1")
    with pytest.raises(Unsupported):
        await reg.blobs.unlink("a", digest(b"x"))


async def test_corrupt_manifest_is_refused(cache, upstream):
    reg, _ = cache
    body = b'{"schemaVersion": 2}'
    upstream.manifests[str(digest(body))] = body + b" "
    with pytest.raises(BadUpstream):
        await reg.manifests.get("a", str(digest(body)))


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
async def test_upstream_credentials(tmp_path, upstream, scheme):
    data = b"a private blob"
    upstream.blobs[str(digest(data))] = data
    upstream.auth = scheme
    async with node_cache(tmp_path / "anon", upstream) as (reg, _):
        with pytest.raises(Denied):
            await reg.blobs.serve("app", digest(data))
    async with node_cache(tmp_path / "authed", upstream, username="user",
                          password="pw") as (reg, _):
        assert await read_plan(await reg.blobs.serve("app", digest(data))) == data
        # A second request reuses the token (or the Basic scheme) without a new 401 dance.
        other = b"another private blob"
        upstream.blobs[str(digest(other))] = other
        assert await read_plan(await reg.blobs.serve("app", digest(other))) == other
    if scheme == "bearer":
        assert upstream.token_requests == 2  # one refused anonymous try, one granted


async def test_eviction_keeps_the_cache_under_its_cap(tmp_path, upstream):
    blobs = [os.urandom(1 << 20) for _ in range(3)]
    for data in blobs:
        upstream.blobs[str(digest(data))] = data
    async with node_cache(tmp_path, upstream, max_bytes=(5 << 20) // 2) as (reg, node):
        for data in blobs:
            assert await read_plan(await reg.blobs.serve("app", digest(data))) == data
            # Stored after the last byte, in the background.
            d = digest(data)
            assert await wait_for_async(lambda d=d: reg.blobs.linked("app", d), bool)
        assert node.lru.total <= node.lru.max_bytes
        assert await reg.blobs.size(digest(blobs[0])) is None  # the oldest went
        assert await reg.blobs.size(digest(blobs[2])) == len(blobs[2])
        # Still linked, but gone: fetched again rather than a broken answer.
        assert await read_plan(await reg.blobs.serve("app", digest(blobs[0]))) == blobs[0]
        assert upstream.gets[f"/v2/app/blobs/{digest(blobs[0])}"] == 2
