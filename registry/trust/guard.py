"""The policy guard: decorators over core's `Manifests` and `Blobs` that refuse to
serve what `[trust] policies` says must be signed and is not.

Every family that serves a repository's manifests or blobs goes through these
services (OCI, Spack's `oci://`, which is OCI, and the Spack classic views, which
serve a cache's blobs through `Blobs.serve` of its repository), so one guard
covers them all. What it decides, for a repository whose rule has `require=` or
`quarantine`:

- A manifest (by tag or digest) is served when it verifies by the
  rule's keys; otherwise 403 DENIED naming the reason (`require=`), or 404
  MANIFEST_UNKNOWN (`quarantine` alone: it is invisible). An index is served as
  it is: each child is judged when the client asks for it.
- Signature manifests (cosign's `sha256-<hex>.sig`, sigstore bundles, Notation,
  trust/seams.py) are always served, or no client could verify anything; so are
  the documents the registry itself renders under `made_tags` (Spack's
  server-kept `index.spack`: a list of what the cache holds, not a binary), and the
  blobs of both.
- A blob is served when some manifest of the repository that references it (as
  config or layer) is served; one reachable only through refused manifests, or
  through none, is refused likewise. Finding those manifests reads the
  repository's manifests once (then kept, and read again when a blob is not
  found in what was read); each judgement is remembered (kept while it holds,
  a refusal for a few seconds, forgotten at once when a signature for it is
  pushed through this process).
- Under `block=` / `scan=required` a manifest is also judged by its scan
  (trust/blocking.py: 403 DENIED naming the advisories, or "not scanned yet"),
  in the same step, after its signatures; its blobs follow it as above.
- A HEAD (of a manifest or a blob) is answered: it moves no bytes, and pushing
  clients ask it of every blob and manifest before they upload.
- A caller who may push the repository (auth on) reads as is: the pipeline that
  pushed an image reads it back to sign it. With auth off nobody is exempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from registry.core.access import CALLER, SIGN, Scope
from registry.core.decorators import BlobsDecorator, ManifestsDecorator
from registry.core.errors import BlobUnknown, Denied, ManifestUnknown, RegistryError
from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest, parse_manifest
from registry.core.protocols import Blobs, Manifests
from registry.core.service import Registry
from registry.core.serving import BlobPlan
from registry.core.types import StoredManifest
from registry.trust.blocking import ScanVerdicts
from registry.trust.policy import Policies, Policy
from registry.trust.seams import Judge, is_signature, signed_by_tag, subject_of

log = logging.getLogger("registry.trust")
REFUSAL_TTL_S = 5.0  # other processes' signature pushes are seen this late at most
ACCEPT_TTL_S = 300.0  # a deleted signature or a revoked key, this late at most
REACH_RETRY_S = 1.0  # a blob found in no manifest: read the repository again after this
_MAX_JUDGED = 50_000
_MAX_REPOS = 1_000


class PolicyDenied(Denied):
    """A pull the policy refuses: 403 DENIED, the reason in the message."""


@dataclass(frozen=True, slots=True)
class Judged:
    """A remembered verdict."""

    ok: bool
    reason: str
    until: float


@dataclass(slots=True)
class _Reach:
    """Which manifests of one repository reference each blob."""

    by_blob: dict[Digest, set[Digest]]
    signatures: set[Digest]
    read_at: float


def _exempt(repo: str) -> bool:
    """A caller who may push the repository (the pipeline reads back what it pushed)
    or have the registry sign there (it reads what it signs)."""
    caller = CALLER.get()
    return caller is not None and (caller.may_push(repo)
                                   or caller.allowed(Scope("oci", repo, SIGN)))


class PolicyGuard:
    """The state the decorators share: the rules, the judge and what it answered.
    `services` are the undecorated ones the judge reads signatures through (set
    when the guard decorates a registry). `scans` judges by scan results (None: no
    scanner, so nothing counts as scanned)."""

    def __init__(self, policies: Policies, judge: Judge,
                 made_tags: frozenset[str] = frozenset(),
                 scans: ScanVerdicts | None = None) -> None:
        self.policies = policies
        self.judge = judge
        self.scans = scans
        self.made_tags = made_tags
        self.services: Registry | None = None
        self._judged: dict[tuple[str, Digest, tuple[str, ...]], Judged] = {}
        self._reach: dict[str, _Reach] = {}
        # Told of each signature pushed through this process (repo, subject): the
        # quarantine releases what it signs.
        self.on_signature: list[Callable[[str, Digest], Awaitable[object]]] = []

    def guarding(self, repo: str) -> Policy | None:
        """The rule that judges pulls of `repo`, unless none does or the caller is exempt."""
        policy = self.policies.for_repo(repo)
        if policy is None or not policy.guards_pulls or _exempt(repo):
            return None
        return policy

    async def verdict(self, repo: str, digest: Digest, keys: Sequence[str],
                      fresh: bool = False) -> Judged:
        """The judge's answer, remembered (`fresh`: asked again whatever is known)."""
        key = (repo, digest, tuple(keys))
        now = time.monotonic()
        hit = self._judged.get(key)
        if hit is not None and hit.until > now and not fresh:
            return hit
        assert self.services is not None, "decorate() first"
        answer = await self.judge(self.services, repo, digest, keys)
        judged = Judged(answer.ok, answer.reason,
                        now + (ACCEPT_TTL_S if answer.ok else REFUSAL_TTL_S))
        if len(self._judged) >= _MAX_JUDGED:
            self._judged.clear()
        self._judged[key] = judged
        return judged

    async def signature_pushed(self, repo: str, subject: Digest) -> None:
        """A signature of `subject` arrived: judge it again, and tell the listeners."""
        for key in [k for k in self._judged if k[0] == repo and k[1] == subject]:
            del self._judged[key]
        for listener in self.on_signature:
            await listener(repo, subject)

    def manifest_pushed(self, repo: str) -> None:
        self._reach.pop(repo, None)

    def forget(self) -> None:
        """New rules (a reload): every verdict is judged again."""
        self._judged.clear()
        if self.scans is not None:
            self.scans.forget()

    async def refusal(self, repo: str, digest: Digest, policy: Policy) -> RegistryError | None:
        """Why `digest` may not be served from `repo` (None: it may)."""
        if policy.judges_signatures:
            refused = await self._signature_refusal(repo, digest, policy)
            if refused is not None:
                return refused
        if not policy.judges_scans:
            return None
        if self.scans is None:  # nothing is ever scanned: only scan=required refuses
            return None if not policy.scan_required else PolicyDenied(
                f"policy {policy.pattern} requires a scan, and this registry scans nothing",
                {"digest": str(digest), "policy": str(policy)})
        return await self.scans.refusal(digest, policy)

    async def _signature_refusal(self, repo: str, digest: Digest,
                                 policy: Policy) -> RegistryError | None:
        judged = await self.verdict(repo, digest, policy.verify_keys)
        if judged.ok:
            return None
        if not policy.require:  # quarantine alone: not there until it verifies
            return ManifestUnknown(detail={"digest": str(digest)})
        keys = "+".join(policy.require)
        return PolicyDenied(f"policy {policy.pattern} requires a signature by {keys}: "
                            f"{judged.reason}",
                            {"digest": str(digest), "policy": str(policy),
                             "reason": judged.reason})

    # -- blobs -----------------------------------------------------------------

    async def _read_reach(self, repo: str) -> _Reach:
        assert self.services is not None
        services = self.services
        by_blob: dict[Digest, set[Digest]] = {}
        signatures: set[Digest] = set()
        for digest in await services.catalog.revisions(repo):
            try:
                manifest = await _parse_stored(await services.manifests.read_bytes(digest))
            except RegistryError:
                continue  # gone meanwhile, or unreadable: references nothing
            if manifest is None:
                continue
            if is_signature(manifest):
                signatures.add(digest)
            for d in manifest.blobs:
                by_blob.setdefault(d.digest, set()).add(digest)
        for tag in self.made_tags:  # rendered on demand: no revision of the repository
            try:
                stored = await services.manifests.get(repo, tag)
            except RegistryError:
                continue
            manifest = await _parse_stored(stored.data or b"")
            if manifest is not None:
                signatures.add(stored.digest)
                for d in manifest.blobs:
                    by_blob.setdefault(d.digest, set()).add(stored.digest)
        if len(self._reach) >= _MAX_REPOS:
            self._reach.clear()
        reach = self._reach[repo] = _Reach(by_blob, signatures, time.monotonic())
        return reach

    async def blob_refusal(self, repo: str, digest: Digest,
                           policy: Policy) -> RegistryError | None:
        reach = self._reach.get(repo)
        if reach is None or (digest not in reach.by_blob
                             and time.monotonic() - reach.read_at > REACH_RETRY_S):
            reach = await self._read_reach(repo)
        holders = reach.by_blob.get(digest, set())
        if holders & reach.signatures:
            return None
        first: RegistryError | None = None
        for manifest in sorted(holders, key=str):
            refused = await self.refusal(repo, manifest, policy)
            if refused is None:
                return None
            first = first or refused
        if first is None:
            if not policy.require and not policy.judges_scans:  # quarantine alone
                return BlobUnknown(detail={"digest": str(digest)})
            return PolicyDenied(f"policy {policy.pattern}: the blob belongs to no manifest "
                                "that may be pulled from this repository",
                                {"digest": str(digest), "policy": str(policy)})
        if isinstance(first, ManifestUnknown):
            return BlobUnknown(detail={"digest": str(digest)})
        first.message = f"{first.message} (every manifest that references the blob)"
        return first


async def _parse_stored(data: bytes) -> Manifest | None:
    try:
        # Stored manifests were validated on push: parsing again only reads them.
        return await asyncio.to_thread(parse_manifest, data, None) if len(data) > 65536 \
            else parse_manifest(data, None)
    except RegistryError:
        return None


class PolicyManifests(ManifestsDecorator):
    """Manifests that are served only as the policy allows (see the module doc)."""

    def __init__(self, inner: Manifests, guard: PolicyGuard) -> None:
        super().__init__(inner)
        self.guard = guard

    async def get(self, repo: str, reference: str, with_body: bool = True) -> StoredManifest:
        policy = self.guard.guarding(repo) if with_body else None
        if policy is None or signed_by_tag(reference) is not None \
                or reference in self.guard.made_tags:
            return await self.inner.get(repo, reference, with_body)
        stored = await self.inner.get(repo, reference, True)
        assert stored.data is not None
        manifest = await _parse_stored(stored.data)
        if manifest is None or manifest.is_index or is_signature(manifest):
            return stored
        refused = await self.guard.refusal(repo, stored.digest, policy)
        if refused is not None:
            raise refused
        return stored

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]:
        digest, manifest = await self.inner.put(repo, reference, data, content_type)
        self.guard.manifest_pushed(repo)
        subject = subject_of(reference, manifest)
        if subject is not None:
            try:
                await self.guard.signature_pushed(repo, subject)
            except Exception:  # the signature is stored; the quarantine sweep retries
                log.exception("after a signature of %s@%s", repo, subject)
        return digest, manifest


class PolicyBlobs(BlobsDecorator):
    """Blobs served only through manifests the policy allows (see the module doc)."""

    def __init__(self, inner: Blobs, guard: PolicyGuard) -> None:
        super().__init__(inner)
        self.guard = guard

    async def serve(self, repo: str, digest: Digest, range_header: str | None = None,
                    with_body: bool = True) -> BlobPlan:
        policy = self.guard.guarding(repo) if with_body else None
        if policy is not None:
            refused = await self.guard.blob_refusal(repo, digest, policy)
            if refused is not None:
                raise refused
        return await self.inner.serve(repo, digest, range_header, with_body)
