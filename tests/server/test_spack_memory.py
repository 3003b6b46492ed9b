"""A worker's memory does not grow with the number of specs in its caches: the
spec state is on disk (registry/spack/statedb.py), indexes are streamed to the
store, a cache's index rows are rewritten a batch at a time.

10,000 specs are written as the journal's own snapshot (loadtest.spack_seed,
seconds instead of the minutes 10,000 pushes take), a real server loads them,
every index view is read, and the worker's resident set is sampled. The code
that kept every record in memory was at 248 MB here, this one at 104 MB
(417 MB and 143 MB at 20,000 specs: docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from harness import launch

from loadtest.spack_rss import read_views, rss_kb
from loadtest.spack_seed import seed_records

SPECS = 10_000
CACHE = "bench/cache"
# The worker with nothing loaded is ~90 MB (imports); 10,000 specs add ~15 MB of
# page cache, index rows and allocator slack; the old code added ~160 MB.
BOUND_KB = 180 * 1024


def test_worker_memory_is_bounded_at_10000_specs(tmp_path):
    asyncio.run(seed_records(tmp_path / "data", CACHE, SPECS))
    reg = launch(tmp_path)
    try:
        read_views(reg.url, CACHE)
        with urllib.request.urlopen(f"{reg.url}/v2/{CACHE}/manifests/index.spack") as r:
            layer = json.loads(r.read())["layers"][-1]
        with urllib.request.urlopen(f"{reg.url}/v2/{CACHE}/blobs/{layer['digest']}") as r:
            installs = json.loads(r.read())["database"]["installs"]
        assert len(installs) == SPECS  # every spec loaded, indexed and served
        del installs
        rss = rss_kb(reg.process.pid)
        assert rss["VmRSS"] < BOUND_KB, rss
    finally:
        reg.stop()
