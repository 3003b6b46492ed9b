"""Helpers for the node-cache tests: configs, counting the origin's GETs, checking logs."""

from __future__ import annotations

import re
import time
from pathlib import Path

from harness import RunningRegistry

# `[server] log_level = "debug"` turns on aiohttp's access log.
ORIGIN_CONFIG = '[server]\nlog_level = "debug"\n'


def cache_config(upstream: str, cache_dir: Path, tag_ttl: int = 60, extra: str = "") -> str:
    return (f'[cache]\nupstream = "{upstream}"\ndir = "{cache_dir}"\ntag_ttl = {tag_ttl}\n'
            f"{extra}")


def upstream_gets(origin: RunningRegistry, path: str) -> int:
    """How many GETs of `path` the origin's access log shows."""
    return len(re.findall(rf'"GET {re.escape(path)} HTTP/1\.1" ', origin.log()))


def settled_gets(origin: RunningRegistry, path: str, wait: float = 2.0) -> int:
    """upstream_gets once the count stops changing (a line is written when its
    response ends, a moment after the cache has the last byte)."""
    deadline = time.monotonic() + wait
    last = upstream_gets(origin, path)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = upstream_gets(origin, path)
        if now == last and now > 0:
            return now
        last = now
    return last


def assert_clean_log(reg: RunningRegistry) -> None:
    """Every error was an OCI error: no traceback, no 500, nothing logged as ERROR."""
    log = reg.log()
    assert "Traceback" not in log, log[-4000:]
    assert " ERROR " not in log, log[-4000:]


def blob_file(cache: RunningRegistry, digest: str) -> Path:
    alg, hex_ = digest.split(":")
    return cache.cache_dir / "blobs" / alg / hex_[:2] / hex_  # type: ignore[attr-defined]


def stored(cache: RunningRegistry, digest: str, wait: float = 5.0) -> bytes:
    """The blob's bytes in the cache's store, once the fetch has moved it there (a
    moment after the last byte went out to the clients)."""
    path = blob_file(cache, digest)
    deadline = time.monotonic() + wait
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.read_bytes()
