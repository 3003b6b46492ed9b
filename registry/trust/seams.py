"""What the policy needs of verification and signing, as Protocols: the policy
(guard.py, quarantine.py, signing.py) is written against these, and the wiring
hands it the room's real verifier and signer.

Also what every part of the room agrees a signature manifest looks like: those
are always servable, or clients could never verify anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest
from registry.core.service import Registry


class Verdict(Protocol):
    """A verification's answer: `ok`, and when not, `reason` (unsigned, unknown
    key, bad signature, ...) in words a client is shown."""

    @property
    def ok(self) -> bool: ...

    @property
    def reason(self) -> str: ...


class Judge(Protocol):
    """Whether `digest` in `repo` carries a valid signature by one of `key_names`,
    reading the signatures through `services`."""

    async def __call__(self, services: Registry, repo: str, digest: Digest,
                       key_names: Sequence[str], /) -> Verdict: ...


class Signer(Protocol):
    """Sign `digest` in `repo` with the registry's key `key_name`, storing the
    signatures through `services`."""

    async def __call__(self, services: Registry, repo: str, digest: Digest,
                       key_name: str, /) -> object: ...


# cosign's legacy tag: the signatures of sha256:<hex> live at `sha256-<hex>.sig`.
SIGNATURE_TAG = re.compile(r"(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})\.sig")
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPES = frozenset({
    SIMPLE_SIGNING,
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.cncf.notary.signature",
})


def signed_by_tag(reference: str) -> Digest | None:
    """The digest a cosign signature tag names; None for any other reference."""
    m = SIGNATURE_TAG.fullmatch(reference)
    return Digest.parse(f"{m.group(1)}:{m.group(2)}") if m else None


def is_signature(manifest: Manifest) -> bool:
    """A signature manifest: cosign's (simple-signing layers), a sigstore bundle
    or a Notation signature (by artifact type, or the config's media type)."""
    if manifest.effective_artifact_type in SIGNATURE_TYPES:
        return True
    return bool(manifest.layers) and all(d.media_type == SIMPLE_SIGNING
                                         for d in manifest.layers)


def subject_of(reference: str, manifest: Manifest) -> Digest | None:
    """The manifest a pushed signature signs: its tag's, else its `subject`'s."""
    by_tag = signed_by_tag(reference)
    if by_tag is not None:
        return by_tag
    if manifest.subject is not None and is_signature(manifest):
        return manifest.subject.digest
    return None


class Finding(Protocol):
    """One vulnerability a scan found: the advisory's `id`, its `aliases`, and the
    severity `level` (critical, high, medium, low, none or unknown)."""

    @property
    def id(self) -> str: ...

    @property
    def aliases(self) -> Sequence[str]: ...

    @property
    def level(self) -> str: ...


class ScanLookup(Protocol):
    """The vulnerabilities the scan of manifest `digest` found, matched against the
    advisories as they are now; None when it was not scanned yet. The wiring hands the
    scan room's (the trust room does not import it)."""

    async def __call__(self, digest: Digest, /) -> Sequence[Finding] | None: ...
