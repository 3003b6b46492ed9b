"""A worker serving a large blob over TLS holds little per connection, while
serving and after: the file goes out in slices the TLS layer encrypts as they
come, under a bounded high-water mark (api/sendfile.py), and glibc's mmap
threshold is pinned so the large transient buffers go back to the system
(registry/allocator.py). Before, 8 connections reading a 64 MiB blob moved the
worker by 5.4 MB each at peak and left 2.8 MB each behind."""

from __future__ import annotations

import asyncio
import ssl

from harness import launch
from tlsutil import make_cert

from loadtest.tls_rss import measure

CLIENTS = 8
MIB = 64
BOUND_MB = 2.0  # per TLS connection serving the blob


def test_tls_reads_of_a_large_blob_hold_little_per_connection(tmp_path):
    cert, key = make_cert(tmp_path)
    ctx = ssl.create_default_context(cafile=str(cert))
    reg = launch(tmp_path, scheme="https", verify=str(cert), config=(
        f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n[storage]\nfsync = false\n'))
    try:
        res = asyncio.run(measure(reg.url, reg.process.pid, ctx, CLIENTS, MIB, rounds=1))
    finally:
        reg.stop()
    assert res["peak_per_conn_mb"] < BOUND_MB, res
    assert res["after_per_conn_mb"] < BOUND_MB, res
