"""Serving a blob from a file that is still being written (what the node cache
does while it downloads): a decorator over the blob service answers with a
`LocalFile` plan that has a progress, and sendfile follows the file as it grows."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time

import aiohttp
import pytest
from harness import wait_for_async

from registry.core.decorators import BlobsDecorator
from registry.core.growing import GrowingFile
from registry.core.ranges import parse_range
from registry.core.serving import BlobPlan, LocalFile

SIZE = 3 << 20
PIECE = 256 << 10


class FollowingBlobs(BlobsDecorator):
    """Wraps the blob service as a node cache would: every GET is served from
    `path`, which a thread writes piece by piece (failing after `fail_at` bytes)."""

    def __init__(self, inner, path: str, data: bytes, fail_at: int | None = None) -> None:
        super().__init__(inner)
        self.path = path
        self.data = data
        self.fail_at = fail_at
        self.progress = GrowingFile(len(data))
        self.served = 0  # plans handed out: requests following the file
        open(path, "wb").close()

    def write_slowly(self) -> None:
        with open(self.path, "ab") as fh:
            for start in range(0, len(self.data), PIECE):
                if self.fail_at is not None and start >= self.fail_at:
                    self.progress.fail(OSError("upstream went away"))
                    return
                fh.write(self.data[start:start + PIECE])
                fh.flush()
                self.progress.advance(start + len(self.data[start:start + PIECE]))
                time.sleep(0.01)
        self.progress.complete()

    async def serve(self, repo, digest, range_header=None, with_body=True):
        fd = await asyncio.to_thread(os.open, self.path, os.O_RDONLY)
        rng = parse_range(range_header, len(self.data))
        self.served += 1
        return BlobPlan(digest, len(self.data), rng, LocalFile(fd, self.progress))


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _with_writer(app, tmp_path, data, fail_at=None):
    client, dispatcher = app
    reg = dispatcher.ctx.registry
    following = FollowingBlobs(reg.blobs, str(tmp_path / "growing"), data, fail_at)
    reg.blobs = following
    return client, threading.Thread(target=following.write_slowly, daemon=True)


async def test_clients_follow_a_growing_file(app, tmp_path, data):
    client, thread = await _with_writer(app, tmp_path, data)
    url = f"/v2/a/blobs/{_digest(data)}"
    requests = [client.get(url) for _ in range(4)]
    requests.append(client.get(url, headers={"Range": f"bytes={SIZE // 2}-"}))
    thread.start()  # clients are already waiting before the first byte is written
    responses = await asyncio.gather(*requests)
    for r in responses[:4]:
        assert r.status == 200 and await r.read() == data
    assert responses[4].status == 206 and await responses[4].read() == data[SIZE // 2:]
    thread.join()


async def test_a_failed_writer_aborts_every_follower(app, tmp_path, data):
    client, thread = await _with_writer(app, tmp_path, data, fail_at=SIZE // 2)
    url = f"/v2/a/blobs/{_digest(data)}"
    pending = [asyncio.ensure_future(client.get(url)) for _ in range(3)]
    following = app[1].ctx.registry.blobs

    async def served() -> int:
        return following.served

    # Every request follows the file before the writer starts (and then fails).
    assert await wait_for_async(served, lambda n: n == 3) == 3
    thread.start()
    for fut in pending:
        r = await fut
        assert r.status == 200  # headers went out before the failure
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()  # never a short body taken for a whole one
    thread.join()
