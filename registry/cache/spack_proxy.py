"""Spack's classic mirror views (`/spack/<cache>/...`) of the upstream, served by
a node cache.

Content-addressed paths (`blobs/sha256/..`) are blobs of the cache's
repository upstream: they go through `CachingBlobs` like any layer, fetched
once and kept. For every other path the upstream is asked what it is: when it
answers with a blob's ETag (`"sha256:..."`: a v2 tarball, an index database)
the node serves that blob the same way; otherwise (a spec manifest, an index
manifest, a key) the document itself is passed on. Both answers are kept for
`tag_ttl` seconds, so a job start's thousand index reads cost the upstream one,
and concurrent lookups of a path share one upstream request.

It is the node cache's implementation of spack.views.ClassicViews: the handler
renders its answers as it renders the registry's own (the import contract lets
this module, and only it, import spack.views and spack.layout).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from registry.cache.manifests import Flights
from registry.cache.upstream import Upstream
from registry.core.grammar import Digest
from registry.spack.layout import classify
from registry.spack.views import Answer, BlobRef, Document, check_cache, missing

DOC_MAX = 16 << 20
ENTRIES_MAX = 4096

Lookup = tuple[Digest | None, bytes | None, str]  # (blob digest | None, document, type)


class SpackProxy:
    """What the upstream's classic views answer, looked up and kept for a while
    (spack.views.ClassicViews)."""

    def __init__(self, upstream: Upstream, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self.ttl = ttl
        self.clock = clock
        self._memo: OrderedDict[tuple[str, str], tuple[float, Lookup]] = OrderedDict()
        self._flights = Flights()

    async def answer(self, cache: str, path: str) -> Answer:
        check_cache(cache)
        digest = classify(path).digest
        if digest is None:  # ask the upstream what the path is
            digest, data, content_type = await self.lookup(cache, path)
            if digest is None:
                if data is None:
                    raise missing(path)
                return Document(data, content_type)
        return BlobRef(cache, digest)  # through CachingBlobs, fetched once and kept

    async def lookup(self, cache: str, rel: str) -> Lookup:
        key = (cache, rel)
        hit = self._memo.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        answer = await self._flights.run(
            key, lambda: self.upstream.spack_document(cache, rel, DOC_MAX))
        self._memo[key] = (self.clock() + self.ttl, answer)
        self._memo.move_to_end(key)
        while len(self._memo) > ENTRIES_MAX:
            self._memo.popitem(last=False)
        return answer
