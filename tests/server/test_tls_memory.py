"""Blobs over TLS (api/sendfile.py): a worker serving a large blob holds little
per connection, while serving and after: the file goes out in slices the TLS
layer encrypts as they come, under a bounded high-water mark, and glibc's mmap
threshold is pinned so the large transient buffers go back to the system
(registry/allocator.py). Before, 8 connections reading a 64 MiB blob moved the
worker by 5.4 MB each at peak and left 2.8 MB each behind. A small blob goes
out with its headers in one write."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl

import aiohttp
import pytest
import requests
from harness import launch
from tlsutil import make_cert

from loadtest.spack_bench import push_blob
from loadtest.tls_rss import REPO, measure

CLIENTS = 8
MIB = 64
BOUND_MB = 2.0  # per TLS connection serving the blob


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = make_cert(tmp)
    reg = launch(tmp, scheme="https", verify=str(cert), config=(
        f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n[storage]\nfsync = false\n'))
    try:
        yield reg, ssl.create_default_context(cafile=str(cert)), str(cert)
    finally:
        reg.stop()


def test_tls_reads_of_a_large_blob_hold_little_per_connection(tls_registry):
    reg, ctx, _ = tls_registry
    res = asyncio.run(measure(reg.url, reg.process.pid, ctx, CLIENTS, MIB, rounds=1))
    assert res["peak_per_conn_mb"] < BOUND_MB, res
    assert res["after_per_conn_mb"] < BOUND_MB, res


@pytest.mark.parametrize("size", [1, 65536, 65537])
def test_small_blobs_over_tls_whole_ranged_and_head(tls_registry, size):
    reg, ctx, cert = tls_registry
    data = os.urandom(size)

    async def push() -> str:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
            return await push_blob(s, reg.url, data, REPO)

    digest = asyncio.run(push())
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    url = f"{reg.url}/v2/{REPO}/blobs/{digest}"
    with requests.Session() as s:
        for _ in range(2):  # the same connection again after a one-write answer
            r = s.get(url, verify=cert)
            assert r.status_code == 200 and r.content == data
            assert r.headers["Docker-Content-Digest"] == digest
        r = s.get(url, headers={"Range": f"bytes={size // 2}-"}, verify=cert)
        assert r.status_code == 206 and r.content == data[size // 2:]
        r = s.head(url, verify=cert)
        assert r.status_code == 200 and r.headers["Content-Length"] == str(size)
        assert r.content == b""
