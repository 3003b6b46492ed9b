"""`sign=KEY`: the registry signs every manifest pushed to a repository whose rule
says so, off the request path.

The push's decorator hands each new manifest to a queue; one task signs them in
order, with the signer the wiring gives it (the key store's), through the
undecorated services, then tells the guard a signature arrived (which releases a
quarantined tag). A push never waits on it.

The seam for the scanner: `gates` are awaited before a manifest is signed; once
the scanning issue lands, its "the scan passed" goes there, and a manifest a gate
refuses is not signed (so under `quarantine` its tag never moves).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from registry.core.decorators import ManifestsDecorator
from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest
from registry.core.protocols import Manifests
from registry.trust.guard import PolicyGuard
from registry.trust.seams import Signer, is_signature

log = logging.getLogger("registry.trust")
QUEUE_MAX = 10_000

Gate = Callable[[str, Digest], Awaitable[bool]]  # (repo, digest) -> may it be signed?


class SigningQueue:
    """Manifests waiting to be signed by the registry, and the task that signs them."""

    def __init__(self, signer: Signer, guard: PolicyGuard) -> None:
        self.signer = signer
        self.guard = guard
        self.gates: list[Gate] = []
        self._queue: asyncio.Queue[tuple[str, Digest, str]] = asyncio.Queue(QUEUE_MAX)
        self.signed = 0

    def submit(self, repo: str, digest: Digest, key: str) -> None:
        try:
            self._queue.put_nowait((repo, digest, key))
        except asyncio.QueueFull:
            log.error("signing queue full: %s@%s left unsigned (sign it with `registry "
                      "sign`)", repo, digest)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def _sign(self, repo: str, digest: Digest, key: str) -> None:
        for gate in self.gates:
            if not await gate(repo, digest):
                log.info("signing: %s@%s held back by a gate", repo, digest)
                return
        services = self.guard.services
        assert services is not None
        await self.signer(services, repo, digest, key)
        self.signed += 1
        log.info("signed %s@%s with %s", repo, digest, key)
        await self.guard.signature_pushed(repo, digest)

    async def run(self) -> None:
        while True:
            repo, digest, key = await self._queue.get()
            try:
                await self._sign(repo, digest, key)
            except Exception:  # one failure must not stop the signing of the others
                log.exception("signing %s@%s with %s failed", repo, digest, key)
            finally:
                self._queue.task_done()

    async def drained(self) -> None:
        """Wait until every manifest queued so far is signed (tests, shutdown)."""
        await self._queue.join()


class SigningManifests(ManifestsDecorator):
    """Every manifest pushed where a rule says `sign=KEY` is queued for signing
    (signature manifests themselves are not signed again)."""

    def __init__(self, inner: Manifests, queue: SigningQueue) -> None:
        super().__init__(inner)
        self.queue = queue

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]:
        digest, manifest = await self.inner.put(repo, reference, data, content_type)
        policy = self.queue.guard.policies.for_repo(repo)
        if policy is not None and policy.sign and not is_signature(manifest):
            self.queue.submit(repo, digest, policy.sign)
        return digest, manifest
