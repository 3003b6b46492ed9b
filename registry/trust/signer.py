"""The registry signs a manifest: cosign's simple signing (the `sha256-<hex>.sig` tag
and an OCI 1.1 referrer) and a sigstore bundle v0.3 (a referrer), made by
registry/trust/simplesigning.py and registry/trust/bundle.py and written through
core's services like any push: blobs by `Blobs.put_small` and linked by
`Mounts.arrived` (the registry made their bytes in this request), manifests by
`Manifests.put` (the tag with it), so hooks, the index, caches and decorators see
them as they see a client's push.

`sign_manifest` is the one entry: `registry sign`, `POST /api/v1/sign/...` and the
policy's `sign=KEY` (registry/trust/signing.py's queue, through `registry_signer`)
call it. The registry itself reads the manifest it signs (its media type and size,
for the referrers' subject), so a `require=` policy, which refuses pulls of what is
unsigned, does not stand in the way of signing it: the caller's right here is
`sign`, checked before. An index is signed as itself (its digest), as cosign
signs what it is given; its children are not signed one by one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from registry.core.access import CALLER, OPERATOR
from registry.core.errors import ManifestUnknown, RegistryError
from registry.core.grammar import Digest
from registry.core.service import Registry
from registry.core.types import StoredManifest
from registry.trust import bundle, simplesigning
from registry.trust.keys import KeyStore, Signer
from registry.trust.seams import Signer as SignerSeam

COSIGN, BUNDLE = "cosign", "bundle"
FORMATS = (COSIGN, BUNDLE)


class SignError(RegistryError):
    """A signature that cannot be made as asked (an unknown format, a full `.sig`)."""

    code, status, message = "UNSUPPORTED", 400, "cannot sign"


@dataclass(frozen=True, slots=True)
class Made:
    """One manifest a signing wrote: its format, digest, and tag if it has one."""

    format: str
    digest: Digest
    tag: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"format": self.format, "digest": str(self.digest), "tag": self.tag}


@dataclass(frozen=True, slots=True)
class Signed:
    """What `sign_manifest` did: the manifest signed, with which key, and the
    manifests it wrote for it."""

    repository: str
    digest: Digest
    media_type: str
    key: str
    fingerprint: str
    made: list[Made] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "digest": str(self.digest),
                "mediaType": self.media_type, "key": self.key,
                "fingerprint": self.fingerprint, "signatures": [m.to_json() for m in self.made]}


# Appending to a `.sig` image reads, extends and rewrites it: one writer at a time per
# signed digest in this process (another process's concurrent append may be lost,
# as with two cosign clients; the referrers are separate manifests and never are).
_appending: dict[tuple[str, str], asyncio.Lock] = {}


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats asked for, each known; SignError otherwise."""
    asked = tuple(dict.fromkeys(formats))
    unknown = [f for f in asked if f not in FORMATS]
    if unknown or not asked:
        raise SignError(f"format: expected some of {', '.join(FORMATS)}",
                        {"format": ",".join(unknown)[:100]})
    return asked


async def resolve(registry: Registry, repo: str, reference: str) -> StoredManifest:
    """The manifest `reference` (a tag or digest) names in `repo`: what is signed."""
    return await registry.manifests.get(repo, reference, with_body=False)


async def sign_manifest(registry: Registry, repo: str, digest: Digest, signer: Signer,
                        host: str, formats: Iterable[str] = FORMATS,
                        annotations: dict[str, str] | None = None) -> Signed:
    """Sign the manifest `digest` of `repo` with `signer` in each of `formats`.
    `host` is the registry's name as clients pull from it (`registry.example.org`,
    `127.0.0.1:5000`): the simple-signing payload names the image as `host/repo`,
    which podman's `signedIdentity` checks. `annotations` go into the payload's
    `optional` (cosign's `-a key=value`). ManifestUnknown when there is no such
    manifest."""
    asked = check_formats(formats)
    acting = CALLER.set(OPERATOR)  # the registry reads what it signs (see the module doc)
    try:
        target = await registry.manifests.get(repo, str(digest), with_body=False)
    finally:
        CALLER.reset(acting)
    subject = {"mediaType": target.media_type, "size": target.size, "digest": str(digest)}
    signed = Signed(repo, digest, target.media_type, signer.key.name, signer.key.fingerprint)
    if COSIGN in asked:
        signed.made.extend(await _simple_signing(registry, repo, digest, subject, signer,
                                                 f"{host}/{repo}", annotations))
    if BUNDLE in asked:
        signed.made.append(await _bundle(registry, repo, digest, subject, signer))
    return signed


async def _store_blob(registry: Registry, repo: str, data: bytes) -> None:
    digest = Digest.of(data)
    await registry.blobs.put_small(data, digest)
    await registry.mounts.arrived(repo, digest, len(data))  # the registry made it


async def _put(registry: Registry, repo: str, reference: str, manifest: bytes) -> Digest:
    digest, _ = await registry.manifests.put(repo, reference, manifest,
                                             simplesigning.OCI_MANIFEST)
    return digest


async def _simple_signing(registry: Registry, repo: str, digest: Digest,
                          subject: dict[str, Any], signer: Signer, reference: str,
                          annotations: dict[str, str] | None) -> list[Made]:
    data = simplesigning.payload(reference, digest, annotations)
    layer = simplesigning.signature_layer(data, signer)
    await _store_blob(registry, repo, data)
    tag = simplesigning.tag_for(digest)
    lock = _appending.setdefault((repo, str(digest)), asyncio.Lock())
    async with lock:
        try:
            current: bytes | None = (await registry.manifests.get(repo, tag)).data
        except ManifestUnknown:
            current = None
        layers = simplesigning.existing_layers(current)
        # Signed already by this key over the same payload: nothing to add (signing
        # again would only grow the image; ECDSA signatures differ each time).
        if not any(old["digest"] == layer["digest"]
                   and simplesigning.signed_by(old, data, signer.key) for old in layers):
            layers.append(layer)
        if len(layers) > simplesigning.MAX_LAYERS:
            raise SignError(f"{tag} holds {simplesigning.MAX_LAYERS} signatures already "
                            "(cosign reads no more)")
        config = simplesigning.image_config(layers)
        await _store_blob(registry, repo, config)
        tagged = await _put(registry, repo, tag, simplesigning.sig_manifest(layers, config))
        if len(_appending) > 4096:  # bounded: forget the locks nobody holds
            for idle in [k for k, held in _appending.items() if not held.locked()]:
                del _appending[idle]
    one = simplesigning.image_config([layer])
    await _store_blob(registry, repo, one)
    referrer = simplesigning.referrer_manifest(layer, one, subject)
    ref_digest = await _put(registry, repo, str(Digest.of(referrer)), referrer)
    return [Made(COSIGN, tagged, tag), Made(COSIGN, ref_digest)]


async def _bundle(registry: Registry, repo: str, digest: Digest, subject: dict[str, Any],
                  signer: Signer) -> Made:
    made = bundle.make(digest, signer)
    await _store_blob(registry, repo, made)
    await _store_blob(registry, repo, bundle.EMPTY_CONFIG)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    referrer = bundle.referrer_manifest(made, subject, created)
    return Made(BUNDLE, await _put(registry, repo, str(Digest.of(referrer)), referrer))


def listen_host(listen: str) -> str:
    """The registry's name in a payload when nothing better is known: the address it
    listens on, a wildcard address as the loopback (where it answers too)."""
    host, _, port = listen.rpartition(":")
    return f"{'127.0.0.1' if host in ('0.0.0.0', '::', '[::]', '') else host}:{port}"


def registry_signer(store: KeyStore, host: str,
                    formats: Iterable[str] = FORMATS) -> SignerSeam:
    """The policy's signer (trust.seams.Signer): sign with the store's key by name,
    in `formats`, naming the registry `host` in the simple-signing payload. The key
    must have no passphrase (the server has nobody to ask)."""
    asked = check_formats(formats)

    async def sign(services: Registry, repo: str, digest: Digest, key_name: str) -> Signed:
        return await sign_manifest(services, repo, digest, await store.signer(key_name),
                                   host, asked)

    return sign
