"""`python -m loadtest spack-pipelines` at a size CI affords: pipelines push format-4
specs at once through two replicas on one SeaweedFS bucket, over OCI and as spack
0.2x pushes to an s3:// mirror (layout v2); every index view of both replicas (v2
index.json, v3 index, oci index.spack, the API) comes to hold every spec whose push
succeeded, and nothing else. And a replica's API knows a cache another replica
created at the first read, not a discovery period later."""

from __future__ import annotations

import asyncio

import requests
from pushing import push_spack_oci

from loadtest import spack_pipelines as sp
from loadtest.spackgen import make_spec

PIPELINES = 4
SPECS_EACH = 4


def test_pipelines_through_two_replicas_every_view_complete(start_registry, s3_env):
    replicas = [start_registry(env=s3_env()), start_registry(env=s3_env())]
    urls = [r.url for r in replicas]

    # The API of a replica that never saw the cache: complete at its first read.
    fresh = make_spec("fresh", fmt=4)
    push_spack_oci(replicas[0], "fresh/cache", fresh)
    r = requests.get(f"{urls[1]}/api/v1/spack/fresh/cache/specs", timeout=30)
    assert r.status_code == 200, r.text
    assert [s["hash"] for s in r.json()["specs"]] == [fresh.hash]

    async def run() -> tuple[sp.Pushed, list[sp.Converged]]:
        pushed = await sp.run_pipelines(urls, PIPELINES, SPECS_EACH)
        return pushed, await sp.poll_views(urls, pushed, limit_s=60)

    pushed, views = asyncio.run(run())
    assert not pushed.failed
    assert len(pushed.hashes) == PIPELINES * SPECS_EACH
    assert len(views) == 2 * 4
    for v in views:  # polled until complete: a view that never got there says why
        assert (v.missing, v.extra) == (0, 0), v
        assert v.after_s is not None, v
