"""Composing an image from a large build cache reads only the named packages' builds
and the closure (registry/spack/compose.py `resolve`), not every record: a worker's
memory does not grow with the cache for a compose request.

SPECS records are seeded as the journal's own snapshot (loadtest.spack_seed, no
blob), a real server loads them, the closure's tarballs (one package and the two
libraries it links) are uploaded into the cache's repository, and one compose
request is made; the worker's peak resident set during that request is sampled
(VmHWM, reset first through /proc/PID/clear_refs). The code that read every record
per request peaked 28 MB above its resident set here (5,000 specs; 76 MB at
10,000), this one 0.1 MB (docs/benchmarks.md has the figures at 200,000 specs)."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

from harness import launch

from loadtest import spack_compose
from loadtest.spack_rss import rss_kb
from loadtest.spack_seed import seed_records
from loadtest.spackgen import FakeSpec

SPECS = 5_000
CACHE = "bench/cache"
# A compose of a 3-spec closure costs little whatever the cache holds (0.1 MB
# measured; the bound leaves room for allocator slack); reading all 5,000 records
# cost 28 MB.
BOUND_KB = 12 * 1024


post = functools.partial(spack_compose.post, timeout=120)


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current VmRSS (Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def test_compose_memory_does_not_grow_with_the_cache(tmp_path):
    made: dict[str, FakeSpec] = {}  # the libraries and pkg0, which links two of them
    asyncio.run(seed_records(tmp_path / "data", CACHE, SPECS, on_spec=lambda s: made.setdefault(
        s.name, s) if s.name.startswith("lib") or s.name == "pkg0" else None))
    pkg = made["pkg0"]
    reg = launch(tmp_path)
    try:
        # Load the cache (state and index rows) before measuring: start-up is not the
        # request's cost. A name with no build: 404 naming it.
        status, body = post(f"{reg.url}/api/v1/spack/{CACHE}/images",
                            json.dumps({"specs": ["nosuchpkg"]}).encode(), "application/json")
        assert status == 404, body
        assert json.loads(body)["errors"]["spec"] == "nosuchpkg"
        for spec in [*pkg.deps, pkg]:  # the seed stores no blob: the closure's tarballs
            status, body = post(f"{reg.url}/v2/{CACHE}/blobs/uploads/?digest="
                                f"{spec.tarball_digest}", spec.tarball,
                                "application/octet-stream")
            assert status == 201, body
        pid = reg.process.pid
        before = rss_kb(pid)["VmRSS"]
        peak_reset = reset_peak(pid)
        status, body = post(f"{reg.url}/api/v1/spack/{CACHE}/images",
                            json.dumps({"specs": [f"{pkg.name}@{pkg.version}"]}).encode(),
                            "application/json")
        assert status == 201, body
        answer = json.loads(body)
        assert [s["hash"] for s in answer["specs"]][-1] == pkg.hash
        assert sorted(s["hash"] for s in answer["specs"][:-1]) == \
            sorted(d.hash for d in pkg.deps)
        after = rss_kb(pid)
        grew = (after["VmHWM"] if peak_reset else after["VmRSS"]) - before
        assert grew < BOUND_KB, (before, after)
    finally:
        reg.stop()
