"""Sibling node caches that share an upstream: one of them fetches each blob.

With `[cache] peers` (the same list on every sibling, each naming itself in
`advertise`), the blob with digest d is fetched from the upstream only by the
sibling that ranks first for d by rendezvous hashing (the highest xxhash64 of
"url\\nd"); the others fetch it from that sibling, which coalesces them like any
clients. A rack of K caches then costs the upstream one copy of each blob, not
K. Every sibling ranks the same way without talking to the others, and a cache
always ranks itself among the live members, so the chosen one fetches from the
upstream itself: no request goes round in a circle.

A sibling that does not answer (connection refused, or not connected within a
second, or a 5xx) is skipped for DEAD_S seconds and the next in rank is asked;
when the cache itself comes next, it goes to the upstream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import xxhash

from registry.cache.upstream import Upstream
from registry.core.grammar import Digest

log = logging.getLogger("registry.cache")

DEAD_S = 10.0
CONNECT_S = 1.0


def rank(members: list[str], digest: str) -> list[str]:
    """Members in the order they are asked for `digest` (rendezvous hashing)."""
    return sorted(members, key=lambda m: (xxhash.xxh64_intdigest(f"{m}\n{digest}".encode()), m),
                  reverse=True)


class Peers:
    """The siblings of this cache and which of them to ask for a blob."""

    def __init__(self, me: str, members: list[str], make: Callable[[str], Upstream],
                 dead_s: float = DEAD_S) -> None:
        self.me = me.rstrip("/")
        self.members = [m.rstrip("/") for m in members]
        self.dead_s = dead_s
        self.clients = {m: make(m) for m in self.members if m != self.me}
        self._dead_until: dict[str, float] = {}

    async def start(self) -> None:
        for client in self.clients.values():
            await client.start()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    def sources(self, digest: Digest) -> list[Upstream]:
        """The siblings to ask for `digest`, best first, before going upstream."""
        now = time.monotonic()
        out = []
        for member in rank(self.members, str(digest)):
            if member == self.me:
                break
            if self._dead_until.get(member, 0.0) <= now:
                out.append(self.clients[member])
        return out

    def failed(self, peer: Upstream, why: str) -> None:
        """`peer` did not answer: skip it for a while."""
        self._dead_until[peer.base] = time.monotonic() + self.dead_s
        log.warning("peer cache %s skipped for %.0f s: %s", peer.base, self.dead_s, why)
