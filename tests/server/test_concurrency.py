"""Many clients pushing at once never see a server error."""

from __future__ import annotations

import asyncio
import hashlib
import os

import aiohttp


async def test_concurrent_mixed_pushes_and_deletes(registry):
    """Small single-request pushes, session uploads and deletes from 16 clients
    in three repositories; this once raced directory creation against removal."""
    errors: list[tuple[int, str]] = []

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        repo = f"race/r{n % 3}"
        for i in range(100):
            data = os.urandom(300_000 if i % 2 else 4096)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            url = f"{registry.url}/v2/{repo}/blobs/uploads/?digest={digest}"
            async with session.post(url, data=data) as r:
                if r.status != 201:
                    errors.append((r.status, await r.text()))
            if i % 10 == 0:
                async with session.delete(f"{registry.url}/v2/{repo}/blobs/{digest}") as r:
                    if r.status != 202:
                        errors.append((r.status, await r.text()))

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(n, session) for n in range(16)))
    assert errors == []
    assert "Traceback" not in registry.log()
