"""Each manifest's signature state in the index, kept off the request path.

`SignatureFeed` is a `core.hooks.Hooks` that forwards every event to the hooks it
wraps (the index's) and, after a manifest is stored, queues the manifest whose
signatures may have changed: the subject of a signature pushed (the digest a
`sha256-<hex>.sig` tag names, or a signature referrer's subject) or the manifest
itself. One task verifies the queue through the core services (`Verifier.checks`)
and sends the index one `SignaturesSeen` event per manifest (`IndexHooks.
signature_event`). The index imports nothing of trust: it is given rows.

The queue is bounded: when it is full a manifest is dropped, and its state is
stale until its signatures change again or `refresh` is asked (the API does,
`GET /api/v1/signatures/<name>@<digest>?refresh=1`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable

from registry.core.decorators import HooksDecorator
from registry.core.grammar import Digest
from registry.core.hooks import Hooks
from registry.core.manifest_format import Manifest
from registry.core.service import Registry
from registry.index.db import Index
from registry.index.hooks import IndexHooks
from registry.index.records import SignatureRow, SignaturesSeen
from registry.trust.checks import UNSIGNED, SignatureCheck
from registry.trust.verify import FORMAT_OF_ARTIFACT, Verifier

log = logging.getLogger("registry.trust")

SIG_TAG = re.compile(r"(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})\.sig")

Sink = Callable[[SignaturesSeen], None]
# The manifests of a repository whose recorded signatures include a signature manifest
# (Index.signed_by): whose state a deletion of it changes.
SignedBy = Callable[[str, str], Awaitable[list[str]]]


def rows_of(checks: tuple[SignatureCheck, ...], at: float) -> tuple[SignatureRow, ...]:
    """The index rows of a manifest's checks (one "unsigned" row for none)."""
    if not checks:
        return (SignatureRow("", 0, "", "", "", False, UNSIGNED, "no signature", at),)
    return tuple(SignatureRow(c.signature, c.position, c.format, c.identity, c.key, c.valid,
                              c.reason, c.detail, at) for c in checks)


def judged_by(digest: Digest, manifest: Manifest, tag: str | None) -> Digest:
    """The manifest whose signature state a push of `manifest` may change."""
    if tag is not None and (m := SIG_TAG.fullmatch(tag)):
        return Digest.parse(f"{m.group(1)}:{m.group(2)}")
    if manifest.subject is not None and \
            (manifest.effective_artifact_type or "") in FORMAT_OF_ARTIFACT:
        return manifest.subject.digest
    return digest


class SignatureFeed(HooksDecorator):
    """Hooks that pass every event on to `inner` and keep the index's signature rows
    current (see the module docstring). `attach` gives it the registry to read."""

    def __init__(self, inner: Hooks, verifier: Verifier, sink: Sink,
                 signed_by: SignedBy | None = None, max_queued: int = 10_000) -> None:
        super().__init__(inner)
        self.verifier = verifier
        self.sink = sink
        self.signed_by = signed_by
        self.max_queued = max_queued
        self.dropped = 0
        self._registry: Registry | None = None
        # (repo, digest, deleted): ordered, deduplicated. deleted: `digest` is a manifest
        # gone, whose subjects (if it was a signature) are verified again.
        self._pending: dict[tuple[str, Digest, bool], None] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def attach(self, registry: Registry) -> None:
        self._registry = registry

    @property
    def registry(self) -> Registry | None:
        """The services it reads signatures through (None before `attach`)."""
        return self._registry

    # -- core.hooks.Hooks -------------------------------------------------------

    async def manifest_put(self, repo: str, digest: Digest, manifest: Manifest,
                           size: int, tag: str | None, config: bytes | None,
                           artifact: str | None = None) -> None:
        await self.inner.manifest_put(repo, digest, manifest, size, tag, config, artifact)
        self.refresh(repo, judged_by(digest, manifest, tag))

    async def manifest_deleted(self, repo: str, digest: Digest) -> None:
        await self.inner.manifest_deleted(repo, digest)
        if self.signed_by is not None:
            self._queue(repo, digest, True)

    async def tag_deleted(self, repo: str, tag: str) -> None:
        await self.inner.tag_deleted(repo, tag)
        if m := SIG_TAG.fullmatch(tag):
            self.refresh(repo, Digest.parse(f"{m.group(1)}:{m.group(2)}"))

    # -- the queue ----------------------------------------------------------------

    def refresh(self, repo: str, digest: Digest) -> None:
        """Verify `digest` in `repo` again, soon (call on the event loop)."""
        self._queue(repo, digest, False)

    def _queue(self, repo: str, digest: Digest, deleted: bool) -> None:
        if self._registry is None:
            return
        if len(self._pending) >= self.max_queued:
            self.dropped += 1
            return
        self._pending[(repo, digest, deleted)] = None
        self._idle.clear()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="signature-feed")
        self._wake.set()

    async def idle(self) -> None:
        """Wait until everything queued so far was verified and sent (tests)."""
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                job = next(iter(self._pending))
                del self._pending[job]
                repo, digest, deleted = job
                if not deleted:
                    await self._one(repo, digest)
                    continue
                for subject in await self._subjects(repo, digest):
                    await self._one(repo, subject)
            self._idle.set()

    async def _subjects(self, repo: str, signature: Digest) -> list[Digest]:
        if self.signed_by is None:
            return []
        try:
            return [Digest.parse(d) for d in await self.signed_by(repo, str(signature))]
        except Exception:  # the state stays stale; serving never depends on it
            log.warning("signatures: finding what %s@%s signed failed", repo, signature,
                        exc_info=True)
            return []

    async def _one(self, repo: str, digest: Digest) -> None:
        registry = self._registry
        if registry is None:
            return
        try:
            if not await registry.manifests.exists(repo, digest):
                return  # a signature of something not (or no longer) here
            checks = await self.verifier.checks(registry, repo, digest)
        except Exception:  # the state stays stale; serving never depends on it
            log.warning("signatures of %s@%s could not be verified", repo, digest,
                        exc_info=True)
            return
        self.sink(SignaturesSeen(repo, str(digest), rows_of(checks, time.time())))


class SignatureStates:
    """What `GET /api/v1/signatures/<name>@<digest>` answers: the index's rows for a
    manifest, verified now (and sent to the index) when it has none or when asked."""

    def __init__(self, feed: SignatureFeed, index: Index, hooks: IndexHooks) -> None:
        self.feed = feed
        self.index = index
        self.hooks = hooks

    async def state(self, registry: Registry, repo: str, digest: Digest,
                    refresh: bool = False) -> tuple[SignatureRow, ...]:
        """The signature rows of `digest` in `repo` (the caller checked it exists);
        verified through the registry the feed reads (below any policy guard), else
        `registry`."""
        if not refresh:
            if self.hooks.queued:
                await self.hooks.flush()
            rows = await self.index.signatures(repo, str(digest))
            if rows:
                return tuple(rows)
        checks = await self.feed.verifier.checks(self.feed.registry or registry, repo, digest)
        rows_now = rows_of(checks, time.time())
        self.feed.sink(SignaturesSeen(repo, str(digest), rows_now))
        return rows_now


async def reverify_all(registry: Registry, verifier: Verifier, index: Index) -> int:
    """Verify every manifest of every repository and write its rows to `index` (what
    `registry reindex` does after rebuilding the rest); how many manifests."""
    done = 0
    for repo in await registry.catalog.repositories():
        events = []
        for digest in await registry.catalog.revisions(repo):
            checks = await verifier.checks(registry, repo, digest)
            events.append(SignaturesSeen(repo, str(digest), rows_of(checks, time.time())))
        await index.apply(events)
        done += len(events)
    return done
