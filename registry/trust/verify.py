"""Finding a manifest's signatures through core's services and judging them.

The signatures of manifest D in repository R are where clients put them: the cosign
tag `sha256-<hex>.sig` in R, and the referrers of D in R whose artifact type is a
signature format's (cosign's OCI 1.1 mode, sigstore bundles, Notation). Each is read
through the Protocols (tags, referrers, manifests, blobs linked into R: bytes another
repository holds are never read on R's behalf) and verified by its format's module
against the trust material: the trusted public keys, and the certificates Notation
chains must end at. Everything read is bounded (checks.MAX_DOCUMENT).

`Verifier.judge` answers the policy's question, "is D signed validly by one of these
keys?", and remembers its answer for the same signatures (keyed by the digests of the
signature manifests, so a new or removed signature is a new question) for a while.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from registry.core.errors import BlobUnknown, ManifestUnknown, RegistryError
from registry.core.grammar import Digest
from registry.core.service import Registry
from registry.trust.bundle_verify import BUNDLE_TYPE, verify_bundle
from registry.trust.checks import (
    BUNDLE,
    COSIGN,
    MAX_DOCUMENT,
    NOTATION,
    UNKNOWN_KEY,
    UNSIGNED,
    Malformed,
    SignatureCheck,
    TrustedKey,
)
from registry.trust.cosign_verify import COSIGN_SIG_ARTIFACT, signature_tag, verify_cosign
from registry.trust.notation import NOTARY_TYPE, TrustStore, verify_notation

# Signatures read per manifest, at most: a flood of referrers costs a bounded walk.
MAX_SIGNATURES = 32


@dataclass(frozen=True, slots=True)
class Found:
    """A manifest in the repository that carries signatures of the one judged."""

    format: str
    digest: str  # the signature manifest's


@dataclass(frozen=True, slots=True)
class TrustMaterial:
    """What signatures are checked against: public keys, and Notation's trusted
    certificates (roots or intermediates, each under a name)."""

    keys: tuple[TrustedKey, ...] = ()
    certificates: TrustStore = ()  # (name, certificate)


@dataclass(frozen=True, slots=True)
class Judgement:
    """The policy's answer for one manifest: `ok` when some check is valid and by one
    of the keys asked for; else `reason` says why not (one of checks.REASONS)."""

    ok: bool
    reason: str
    checks: tuple[SignatureCheck, ...] = ()
    detail: str = ""


FORMAT_OF_ARTIFACT = {COSIGN_SIG_ARTIFACT: COSIGN, BUNDLE_TYPE: BUNDLE, NOTARY_TYPE: NOTATION}


async def find_signatures(reg: Registry, repo: str, digest: Digest) -> list[Found]:
    """Every signature manifest of `digest` in `repo`: the cosign tag first, then the
    referrers whose artifact type is a signature format's, by digest."""
    found: list[Found] = []
    try:
        tagged = await reg.tags.resolve(repo, signature_tag(str(digest)))
        found.append(Found(COSIGN, str(tagged)))
    except ManifestUnknown:
        pass
    for desc in sorted(await reg.referrers.list(repo, digest),
                       key=lambda d: str(d.get("digest"))):
        fmt = FORMAT_OF_ARTIFACT.get(str(desc.get("artifactType", "")))
        if fmt is not None and isinstance(desc.get("digest"), str):
            found.append(Found(fmt, desc["digest"]))
    unique: dict[str, Found] = {}
    for f in found:  # a cosign referrer may also be the tagged one
        unique.setdefault(f.digest, f)
    return list(unique.values())[:MAX_SIGNATURES]


def blob_reader(reg: Registry, repo: str) -> Callable[[str, int], Awaitable[bytes]]:
    """Reads a blob linked into `repo`, of at most MAX_DOCUMENT bytes (Malformed if
    it is not there, larger, or not the size its descriptor says)."""
    async def fetch(digest: str, size: int) -> bytes:
        try:
            d = Digest.parse(digest)
        except RegistryError:
            raise Malformed(f"{digest[:80]!r} is not a digest") from None
        if not await reg.blobs.linked(repo, d):
            raise Malformed(f"blob {d} is not in the repository")
        stored = await reg.blobs.size(d)
        if stored is None:
            raise Malformed(f"blob {d} is not in the repository")
        if stored > MAX_DOCUMENT or stored != size:
            raise Malformed(f"blob {d} is {stored} bytes, not the {size} its descriptor says "
                            f"(at most {MAX_DOCUMENT})")
        try:
            return await reg.blobs.read(d, MAX_DOCUMENT)
        except BlobUnknown:
            raise Malformed(f"blob {d} is not in the repository") from None

    return fetch


async def _manifest_bytes(reg: Registry, repo: str, digest: str) -> bytes | None:
    try:
        d = Digest.parse(digest)
        if not await reg.manifests.exists(repo, d):
            return None
        return await reg.manifests.read_bytes(d)
    except (ManifestUnknown, BlobUnknown):
        return None  # deleted while we looked


async def verify(reg: Registry, repo: str, digest: Digest, material: TrustMaterial,
                 found: Sequence[Found] | None = None) -> list[SignatureCheck]:
    """One check per signature of `digest` in `repo` ([] when it has none)."""
    if found is None:
        found = await find_signatures(reg, repo, digest)
    fetch = blob_reader(reg, repo)
    checks: list[SignatureCheck] = []
    for f in found:
        raw = await _manifest_bytes(reg, repo, f.digest)
        if raw is None:
            continue
        if f.format == COSIGN:
            checks += await verify_cosign(raw, f.digest, str(digest), material.keys, fetch)
        elif f.format == BUNDLE:
            checks += await verify_bundle(raw, f.digest, str(digest), material.keys, fetch)
        else:
            checks += await verify_notation(raw, f.digest, str(digest), material.certificates,
                                            fetch)
    return checks


def judgement(checks: Sequence[SignatureCheck], key_names: Iterable[str]) -> Judgement:
    """The policy's answer over `checks`: ok if a valid one is vouched for by one of
    `key_names`; else the reason of the most telling failure."""
    names = set(key_names)
    if not checks:
        return Judgement(False, UNSIGNED, (), "no signature")
    for c in checks:
        if c.valid and c.key in names:
            return Judgement(True, "", tuple(checks))
    failed = [c for c in checks if not c.valid]
    if not failed:  # valid, but by keys nobody asked for
        keys = ", ".join(sorted({c.key or c.identity for c in checks}))
        return Judgement(False, UNKNOWN_KEY, tuple(checks),
                         f"signed by {keys}, not by {', '.join(sorted(names)) or 'a required key'}")
    first = failed[0]
    return Judgement(False, first.reason, tuple(checks), first.detail)


KeySource = Callable[[], Awaitable[TrustMaterial]]


@dataclass
class _Entry:
    checks: tuple[SignatureCheck, ...]
    until: float


@dataclass
class Verifier:
    """Verification with the registry's trust material (`material()`, asked each time
    so a key added is seen), and a bounded memory of recent answers."""

    material: KeySource
    ttl: float = 60.0
    max_entries: int = 10_000
    _cache: OrderedDict[tuple[str, str, tuple[str, ...]], _Entry] = field(
        default_factory=OrderedDict)

    async def checks(self, reg: Registry, repo: str,
                     digest: Digest) -> tuple[SignatureCheck, ...]:
        """The checks of `digest`'s signatures in `repo`, from memory when the same
        signature manifests were verified less than `ttl` seconds ago."""
        found = await find_signatures(reg, repo, digest)
        key = (repo, str(digest), tuple(f.digest for f in found))
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is not None and entry.until > now:
            self._cache.move_to_end(key)
            return entry.checks
        material = await self.material()
        checks = tuple(await verify(reg, repo, digest, material, found))
        self._cache[key] = _Entry(checks, now + self.ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return checks

    async def judge(self, reg: Registry, repo: str, digest: Digest,
                    key_names: Iterable[str]) -> Judgement:
        """Is `digest` in `repo` validly signed by one of `key_names`? (see `judgement`)"""
        return judgement(await self.checks(reg, repo, digest), key_names)

    def forget(self) -> None:
        """Drop every remembered answer (the trust material changed)."""
        self._cache.clear()
