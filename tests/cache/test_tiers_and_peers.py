"""Node caches chained into tiers and grouped as peers, each a real process in
front of a real origin: the origin (and each tier) sends every blob about once
however many caches and clients want it, and a dead peer is stepped over."""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor

import requests
from api.helpers import push_blob
from cache_helpers import ORIGIN_CONFIG, settled_gets, stored
from harness import free_port

from registry.cache.peers import rank

MiB = 1 << 20


def pull_all(urls: list[str]) -> list[str]:
    """Every URL at once; the sha256 of each body (a failed pull raises)."""
    def one(url: str) -> str:
        r = requests.get(url, timeout=120)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        return hashlib.sha256(r.content).hexdigest()

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(one, urls))


def test_two_tiers_send_each_blob_once_per_tier(origin, start_cache):
    repo = "tiers/app"
    data = os.urandom(16 * MiB)
    digest = push_blob(origin, repo, data)
    site = start_cache(origin.url, extra=ORIGIN_CONFIG)  # debug: its access log counts
    nodes = [start_cache(site.url) for _ in range(2)]
    urls = [f"{n.url}/v2/{repo}/blobs/{digest}" for n in nodes for _ in range(12)]
    assert set(pull_all(urls)) == {hashlib.sha256(data).hexdigest()}
    path = f"/v2/{repo}/blobs/{digest}"
    assert settled_gets(origin, path) == 1  # the site cache fetched it once
    assert settled_gets(site, path) == 2  # once per node cache
    for cache in (site, *nodes):
        assert stored(cache, digest) == data


def peer_group(origin, start_cache, n: int, dead: int = 0):
    """n peered caches (and `dead` members that never started), all in one list."""
    ports = [free_port() for _ in range(n + dead)]
    members = [f"http://127.0.0.1:{p}" for p in ports]
    listed = ", ".join(f'"{m}"' for m in members)
    caches = [start_cache(origin.url, port=p,
                          extra=f'peers = [{listed}]\nadvertise = "{m}"\n')
              for p, m in zip(ports[:n], members[:n], strict=True)]
    return caches, members


def test_peers_cost_the_origin_one_copy(origin, start_cache):
    repo = "peers/app"
    blobs = {push_blob(origin, repo, data): data
             for data in (os.urandom(8 * MiB) for _ in range(3))}
    caches, members = peer_group(origin, start_cache, 3)
    urls = [f"{c.url}/v2/{repo}/blobs/{d}" for d in blobs for c in caches for _ in range(4)]
    got = pull_all(urls)
    assert sorted(set(got)) == sorted(hashlib.sha256(b).hexdigest() for b in blobs.values())
    for digest, data in blobs.items():
        assert settled_gets(origin, f"/v2/{repo}/blobs/{digest}") == 1
        # The sibling ranked first fetched it from the origin, the others from it.
        first = rank(members, digest)[0]
        for cache, member in zip(caches, members, strict=True):
            fetched = re.findall(rf"fetching {re.escape(digest)} \(\d+ bytes\) from (\S+)",
                                 cache.log())
            assert fetched == [origin.url if member == first else first], (member, fetched)
            assert stored(cache, digest) == data


def test_a_dead_peer_is_stepped_over(origin, start_cache):
    repo = "peers/dead"
    caches, members = peer_group(origin, start_cache, 2, dead=1)
    dead = members[2]
    # A blob the dead member would fetch: the live ones must go round it.
    while True:
        data = os.urandom(2 * MiB)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if rank(members, digest)[0] == dead:
            break
    push_blob(origin, repo, data)
    urls = [f"{c.url}/v2/{repo}/blobs/{digest}" for c in caches for _ in range(6)]
    assert set(pull_all(urls)) == {hashlib.sha256(data).hexdigest()}
    assert settled_gets(origin, f"/v2/{repo}/blobs/{digest}") == 1  # the next in rank
    assert any(f"peer cache {dead} skipped" in c.log() for c in caches)
