"""A tiny upstream registry for the faults a real one will not produce on demand:
wrong bytes for a digest, a connection cut half way, a slow body. It serves blobs
by digest (any repository), runs its own event loop on a thread, and counts GETs."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter

from aiohttp import web


class FakeUpstream:
    """`blobs[digest] = data`; set `corrupt`, `cut` or `delay` to misbehave."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.gets: Counter[str] = Counter()
        self.corrupt = False
        self.cut = False
        self.delay = 0.0  # seconds between 256 KiB pieces
        self._loop = asyncio.new_event_loop()
        self._runner: web.ServerRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    def blob_gets(self, digest: str) -> int:
        return sum(n for path, n in self.gets.items() if path.endswith(f"/blobs/{digest}"))

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        parts = request.path.split("/")
        if len(parts) < 4 or parts[-2] != "blobs" or parts[-1] not in self.blobs:
            if request.path in ("/v2", "/v2/"):
                return web.json_response({})
            return web.json_response(
                {"errors": [{"code": "BLOB_UNKNOWN", "message": "unknown", "detail": {}}]},
                status=404)
        data = self.blobs[parts[-1]]
        headers = {"Content-Length": str(len(data)), "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            return web.Response(headers=headers)
        self.gets[request.path] += 1
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        body = bytearray(data)
        if self.corrupt:
            body[len(body) // 2] ^= 0xFF
        piece = 256 << 10
        for start in range(0, len(body), piece):
            if self.cut and start >= len(body) // 2:
                assert request.transport is not None
                request.transport.abort()  # the upstream dies mid-stream
                return resp
            await resp.write(bytes(body[start:start + piece]))
            if self.delay:
                await asyncio.sleep(self.delay)
        await resp.write_eof()
        return resp

    def start(self) -> FakeUpstream:
        ready = threading.Event()

        async def serve() -> None:
            self._runner = web.ServerRunner(web.Server(self._handle), handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()  # its self-pipe sockets with it
