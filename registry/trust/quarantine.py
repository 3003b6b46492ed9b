"""Quarantine: a push to a repository whose rule says `quarantine` does not move its
tag until the manifest verifies.

The manifest is stored by digest (so the pusher, and `sign=`, can sign it) and its
tag is held in the trust area (`_trust/held/<repo>/_at/<alg>/<hex>/<tag>`, and
`<repo>/_tags/<tag>` naming the newest held push of the tag). Until it verifies,
the tag goes on pointing where it pointed (the previous digest, or nowhere: 404
MANIFEST_UNKNOWN), for every reader, in every process: the tag in the store never
names an unverified manifest, so no concurrent pull can see one. When a signature
of it is pushed (through this process: at once; through another: by the next
sweep, every `SWEEP_S`, and at start-up) and it verifies, the manifest is put
again by its tag, which moves the tag and tells the index. Only the newest held
push of a tag moves it: an older one that verifies later is dropped.
"""

from __future__ import annotations

import asyncio
import logging

from registry.core.areas import Area
from registry.core.decorators import ManifestsDecorator
from registry.core.errors import RegistryError
from registry.core.grammar import Digest, is_digest_like
from registry.core.manifest_format import Manifest
from registry.core.protocols import Manifests
from registry.trust.guard import PolicyGuard
from registry.trust.seams import is_signature, signed_by_tag

log = logging.getLogger("registry.trust")
SWEEP_S = 30.0


def _at(repo: str, digest: Digest) -> str:
    return f"{repo}/_at/{digest.algorithm}/{digest.hex}"


class Held:
    """The tags of quarantined pushes, and their release once verified."""

    def __init__(self, area: Area, guard: PolicyGuard) -> None:
        self.area = area
        self.guard = guard

    async def hold(self, repo: str, tag: str, digest: Digest) -> None:
        # The newest first: a release checks it before it moves the tag.
        await self.area.write(f"{repo}/_tags/{tag}", str(digest).encode())
        await self.area.write(f"{_at(repo, digest)}/{tag}", b"")

    async def release(self, repo: str, digest: Digest, fresh: bool = False) -> list[str]:
        """Move the tags held for `digest` if it verifies now; the tags moved.
        `fresh`: judge again, whatever was remembered (the sweep: the signature may
        have come through another process since)."""
        tags = await self.area.list(_at(repo, digest))
        if not tags:
            return []
        policy = self.guard.policies.for_repo(repo)
        if policy is not None and policy.quarantine:
            if not (await self.guard.verdict(repo, digest, policy.verify_keys, fresh)).ok:
                return []
        services = self.guard.services
        assert services is not None
        stored = await services.manifests.get(repo, str(digest))
        assert stored.data is not None
        moved = []
        for tag in tags:
            newest = await self.area.read(f"{repo}/_tags/{tag}", 256)
            if newest == str(digest).encode():
                # Put again by tag: the tag moves, and the index hears of it.
                await services.manifests.put(repo, tag, stored.data, stored.media_type)
                await self.area.delete(f"{repo}/_tags/{tag}")
                moved.append(tag)
            await self.area.delete(f"{_at(repo, digest)}/{tag}")
        if moved:
            log.info("quarantine: %s@%s verified, tag(s) %s moved", repo, digest,
                     ", ".join(moved))
        return moved

    async def sweep(self) -> int:
        """Release whatever verifies now (signatures pushed through other processes,
        or before a restart); the number of tags moved."""
        pending: set[tuple[str, Digest]] = set()
        async for f in self.area.walk():
            repo, sep, rest = f.name.partition("/_at/")
            parts = rest.split("/")
            if sep and len(parts) == 3:
                try:
                    pending.add((repo, Digest.parse(f"{parts[0]}:{parts[1]}")))
                except (ValueError, RegistryError):  # a stray file: not a digest
                    continue
        moved = 0
        for repo, digest in sorted(pending, key=str):
            try:
                moved += len(await self.release(repo, digest, fresh=True))
            except Exception:  # one bad entry must not stop the others
                log.exception("quarantine: releasing %s@%s failed", repo, digest)
        return moved

    async def run(self) -> None:
        """Sweep at start-up and every SWEEP_S seconds."""
        while True:
            try:
                await self.sweep()
            except Exception:  # housekeeping must never stop the server
                log.exception("quarantine sweep failed")
            await asyncio.sleep(SWEEP_S)


class QuarantineManifests(ManifestsDecorator):
    """Pushes by tag to a quarantined repository are stored by digest and their tag
    held; a signature pushed releases what it signs."""

    def __init__(self, inner: Manifests, held: Held) -> None:
        super().__init__(inner)
        self.held = held

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]:
        policy = self.held.guard.policies.for_repo(repo)
        if policy is None or not policy.quarantine or is_digest_like(reference) \
                or signed_by_tag(reference) is not None:
            digest, manifest = await self.inner.put(repo, reference, data, content_type)
        else:
            digest, manifest = await self.inner.put(repo, str(Digest.of(data)), data,
                                                    content_type)
            if is_signature(manifest):  # a signature pushed by a tag of its own
                return await self.inner.put(repo, reference, data, content_type)
            await self.held.hold(repo, reference, digest)
            await self.held.release(repo, digest)  # signed already (a push again)
        return digest, manifest
