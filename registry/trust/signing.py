"""`sign=KEY`: the registry signs every manifest pushed to a repository whose rule
says so, off the request path.

The push's decorator hands each new manifest to a queue; one task signs them in
order, with the signer the wiring gives it (the key store's), through the
undecorated services, then tells the guard a signature arrived (which releases a
quarantined tag). A push never waits on it.

`gates` are awaited before a manifest is signed: a manifest a gate refuses is not
signed (so under `quarantine` its tag never moves), one it cannot judge yet (None)
is queued again a little later, for `GATE_PATIENCE_S` at most. The wiring puts
`scan_gate` there: under `sign=` with `block=`, a manifest is signed only once its
scan is done and passes the rule.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from registry.core.decorators import ManifestsDecorator
from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest
from registry.core.protocols import Manifests
from registry.trust.blocking import blocking
from registry.trust.guard import PolicyGuard
from registry.trust.seams import Signer, is_signature

log = logging.getLogger("registry.trust")
QUEUE_MAX = 10_000
GATE_RETRY_S = 1.0  # a gate that cannot judge yet is asked again this much later
GATE_PATIENCE_S = 3600.0  # and given up on after this long (logged: sign by hand)

# (repo, digest) -> may it be signed? None: not known yet, ask again later.
Gate = Callable[[str, Digest], Awaitable[bool | None]]


class SigningQueue:
    """Manifests waiting to be signed by the registry, and the task that signs them."""

    def __init__(self, signer: Signer, guard: PolicyGuard) -> None:
        self.signer = signer
        self.guard = guard
        self.gates: list[Gate] = []
        self._queue: asyncio.Queue[tuple[str, Digest, str, float]] = asyncio.Queue(QUEUE_MAX)
        self.signed = 0
        self.waiting = 0  # held back by a gate that cannot judge yet

    def submit(self, repo: str, digest: Digest, key: str, since: float | None = None) -> None:
        try:
            self._queue.put_nowait((repo, digest, key,
                                    time.monotonic() if since is None else since))
        except asyncio.QueueFull:
            log.error("signing queue full: %s@%s left unsigned (sign it with `registry "
                      "sign`)", repo, digest)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _later(self, repo: str, digest: Digest, key: str, since: float) -> None:
        self.waiting -= 1
        self.submit(repo, digest, key, since)

    async def _sign(self, repo: str, digest: Digest, key: str, since: float) -> None:
        for gate in self.gates:
            allowed = await gate(repo, digest)
            if allowed is None and time.monotonic() - since < GATE_PATIENCE_S:
                self.waiting += 1
                asyncio.get_running_loop().call_later(GATE_RETRY_S, self._later, repo,
                                                      digest, key, since)
                return
            if not allowed:
                log.warning("signing: %s@%s held back by a gate (%s); not signed", repo,
                            digest, "refused" if allowed is False else "still undecided")
                return
        services = self.guard.services
        assert services is not None
        await self.signer(services, repo, digest, key)
        self.signed += 1
        log.info("signed %s@%s with %s", repo, digest, key)
        await self.guard.signature_pushed(repo, digest)

    async def run(self) -> None:
        while True:
            repo, digest, key, since = await self._queue.get()
            try:
                await self._sign(repo, digest, key, since)
            except Exception:  # one failure must not stop the signing of the others
                log.exception("signing %s@%s with %s failed", repo, digest, key)
            finally:
                self._queue.task_done()

    async def drained(self) -> None:
        """Wait until every manifest queued so far is signed (tests, shutdown)."""
        await self._queue.join()


def scan_gate(guard: PolicyGuard) -> Gate:
    """The gate for `block=` (with `sign=`): sign once the scan passes the repository's
    rule; not while it is not scanned (None); never when it blocks."""
    async def gate(repo: str, digest: Digest) -> bool | None:
        policy = guard.policies.for_repo(repo)
        if policy is None or policy.block is None or guard.scans is None:
            return True
        findings = await guard.scans.findings(digest)
        if findings is None:
            return None
        return not blocking(policy, findings)
    return gate


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
