"""Least-recently-used eviction of the node cache's blobs under `[cache] max_bytes`.

An in-process table of the stored blobs in order of last use, loaded at start
from the blob store (`Blobs.stored`; file modification time standing for last
use) and kept up to date by the blob and manifest decorators. Evictions go
through `Blobs.remove`, the owner of `blobs/`. A blob is never evicted
while a serving plan holds it (`pin`/`unpin`, a count per digest) and a blob
still downloading is not in the table until it is complete. Deleting a file
that a sendfile thread has open is harmless on POSIX (the bytes stay readable
through the descriptor), so the pins protect the window before a file is open.

Evicted blobs keep their repository links: the decorators treat a link to a
missing blob as a miss and fetch it again.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict

from registry.cache.stats import CacheStats
from registry.core.errors import StorageError
from registry.core.grammar import Digest
from registry.core.protocols import Blobs

log = logging.getLogger("registry.cache")


class Lru:
    """Stored blobs by last use, their total size, and the pins of those in use.
    `blobs` is the blob store they are listed from and removed through (core's,
    which drops every worker's cached sizes with the file); the node cache sets it
    when it decorates the registry."""

    def __init__(self, max_bytes: int, stats: CacheStats | None = None,
                 blobs: Blobs | None = None) -> None:
        self.blobs = blobs
        self.stats = stats
        self.max_bytes = max_bytes  # 0: no cap
        self._sizes: OrderedDict[Digest, int] = OrderedDict()
        self._pins: Counter[Digest] = Counter()
        self.total = 0

    async def load(self) -> None:
        """Fill the table from the store, oldest first."""
        assert self.blobs is not None, "Lru.blobs is set when the cache decorates"
        found: list[tuple[float, Digest, int]] = []
        async for info in self.blobs.stored():
            found.append((info.mtime, info.digest, info.size))
        for _, digest, size in sorted(found, key=lambda f: f[0]):
            self.touch(digest, size)
        log.info("node cache holds %d blob(s), %d bytes", len(self._sizes), self.total)

    def touch(self, digest: Digest, size: int) -> None:
        """`digest` (of `size` bytes) was used just now."""
        old = self._sizes.pop(digest, None)
        if old is not None:
            self.total -= old
        self._sizes[digest] = size
        self.total += size

    def pin(self, digest: Digest) -> None:
        self._pins[digest] += 1

    def unpin(self, digest: Digest) -> None:
        self._pins[digest] -= 1
        if self._pins[digest] <= 0:
            del self._pins[digest]

    def pinned(self, digest: Digest) -> bool:
        return self._pins.get(digest, 0) > 0

    async def make_room(self, incoming: int = 0) -> int:
        """Evict least recently used blobs until `incoming` more bytes fit under the
        cap (as far as unpinned blobs allow); how many bytes were freed."""
        if not self.max_bytes:
            return 0
        freed = 0
        for digest in list(self._sizes):
            if self.total + incoming <= self.max_bytes:
                break
            if self.pinned(digest):
                continue
            freed += await self._evict(digest)
        return freed

    async def _evict(self, digest: Digest) -> int:
        size = self._sizes.pop(digest, 0)
        self.total -= size
        assert self.blobs is not None
        try:
            await self.blobs.remove(digest)
        except StorageError:
            log.warning("could not evict %s", digest, exc_info=True)
            return 0
        if self.stats is not None:
            self.stats.evictions += 1
            self.stats.bytes_evicted += size
        log.info("evicted %s (%d bytes); node cache now %d bytes", digest, size, self.total)
        return size
