"""The mount rule: the one way a blob already in the store is linked into a repository.

Knowing a digest is not a right to its bytes. A blob may be linked into a
repository only

- when its bytes arrived in the request (an upload, an S3 put of a
  content-addressed key, a document the server made, a node cache's download):
  `Mounts.arrived`;
- or when the caller may pull a repository that links it already (`Mounts.link`):
  the target itself (nothing new is exposed), a source the client named (OCI's
  `from`), or one the index says links it, each re-checked in storage, since the
  index lags; a caller who may pull everything (`*`) may take the blob from
  wherever it is (the automatic mount, if `[storage] auto_mount` allows);
- or when a source outside the store vouches that the repository holds it (a node
  cache's upstream, which is the truth for a cache).

A refused link tells nothing, not even whether the blob exists: the caller sees
what it would see for a digest nobody has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from registry.core.access import Caller
from registry.core.grammar import Digest
from registry.core.protocols import Blobs

# Repositories the index says link a digest (it may lag: re-checked in storage).
Holders = Callable[[Digest], Awaitable[Iterable[str]]]
# Whether a source outside the store says `repo` holds `digest`.
Vouch = Callable[[str, Digest], Awaitable[bool]]
# Candidates from the index checked in storage per link: a bound on the work one
# request can cause; the first that holds the blob is enough.
MAX_CANDIDATES = 16


class Mounts:
    """Links into repositories, each by the mount rule (see the module docstring)."""

    def __init__(self, blobs: Blobs, holders: Holders | None = None,
                 auto_mount: bool = True) -> None:
        self.blobs = blobs
        self.holders = holders
        self.auto_mount = auto_mount

    async def arrived(self, repo: str, digest: Digest, size: int) -> None:
        """Link a blob whose bytes this request brought (and verified): the caller
        holds them, so it may put them anywhere it may push."""
        await self.blobs.link(repo, digest, size)

    async def link(self, repo: str, digest: Digest, caller: Caller,
                   source: str | None = None, vouch: Vouch | None = None) -> int | None:
        """Link the stored blob `digest` into `repo` if the rule allows; its size,
        or None, exactly as if the blob were nowhere, when it does not."""
        if await self.blobs.linked(repo, digest):
            return await self.blobs.size(digest)  # there already: nothing is exposed
        if not await self._may_link(repo, digest, caller, source, vouch):
            return None
        size = await self.blobs.size(digest)
        if size is None:
            return None
        await self.blobs.link(repo, digest, size)
        return size

    async def _may_link(self, repo: str, digest: Digest, caller: Caller, source: str | None,
                        vouch: Vouch | None) -> bool:
        if source is not None and source != repo and caller.may_pull(source) \
                and await self.blobs.linked(source, digest):
            return True
        if self.auto_mount and caller.pulls_everything:
            return True
        if self.auto_mount and self.holders is not None:
            checked = 0
            for candidate in await self.holders(digest):
                if candidate in (repo, source) or not caller.may_pull(candidate):
                    continue
                if await self.blobs.linked(candidate, digest):
                    return True
                checked += 1
                if checked >= MAX_CANDIDATES:
                    break
        return vouch is not None and await vouch(repo, digest)
