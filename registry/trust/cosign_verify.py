"""cosign's simple signing, as `cosign sign --key` writes it and `cosign verify --key`
reads it (sigstore/cosign pkg/oci, pkg/cosign).

The signature manifest is an OCI image manifest tagged `sha256-<hex>.sig` in the
signed manifest's repository (or, in cosign's OCI 1.1 mode, a referrer of artifact
type COSIGN_SIG_ARTIFACT). Each layer is one signature: its blob is the payload
(media type SIMPLESIGNING), a JSON document naming the signed digest at
`critical.image.docker-manifest-digest`, and its annotation SIGNATURE_ANNOTATION is
the base64 signature over the payload's bytes (ECDSA: ASN.1 DER). A layer may carry a
certificate (`dev.sigstore.cosign/certificate`, PEM) whose key signed it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from registry.trust.checks import (
    BAD_SIGNATURE,
    COSIGN,
    MALFORMED,
    MAX_DOCUMENT,
    MAX_LAYERS,
    UNKNOWN_KEY,
    WRONG_DIGEST,
    Malformed,
    SignatureCheck,
    TrustedKey,
    b64decode,
    field_of,
    fingerprint,
    invalid,
    json_object,
    signer_of,
    verifies,
)

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
PAYLOAD_TYPE = "cosign container image signature"

# Reads a blob of the signature's repository: (digest, declared size) -> bytes, at
# most MAX_DOCUMENT of them; raises Malformed if it is larger or absent.
FetchBlob = Callable[[str, int], Awaitable[bytes]]


def signature_tag(digest: str) -> str:
    """The tag cosign gives the signatures of `digest`: `sha256:<hex>` -> `sha256-<hex>.sig`."""
    return digest.replace(":", "-", 1) + ".sig"


def simple_signing_payload(docker_reference: str, digest: str,
                           optional: dict[str, Any] | None = None) -> bytes:
    """The payload cosign signs for `digest` (its layout, compact as cosign writes it)."""
    return json.dumps({"critical": {"identity": {"docker-reference": docker_reference},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": PAYLOAD_TYPE},
                       "optional": optional}, separators=(",", ":")).encode()


def signed_digest(payload: bytes) -> str:
    """The digest a simple-signing payload names; Malformed if it is none."""
    doc = json_object(payload, "payload")
    kind = field_of(doc, "critical", "type")
    if kind.lower() != PAYLOAD_TYPE:
        raise Malformed(f"payload type is {kind[:80]!r}, not {PAYLOAD_TYPE!r}")
    return str(field_of(doc, "critical", "image", "docker-manifest-digest"))[:200]


def _certificate_key(annotations: dict[str, Any]) -> tuple[Any, str] | None:
    pem = annotations.get(CERTIFICATE_ANNOTATION)
    if not pem:
        return None
    if not isinstance(pem, str) or len(pem) > 64 << 10:
        raise Malformed("the certificate annotation is not a PEM certificate")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        key = cert.public_key()
    except ValueError:
        raise Malformed("the certificate annotation is not a PEM certificate") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return key, str(names[0].value) if names else cert.subject.rfc4514_string()


async def _check_layer(layer: Any, position: int, fetch: FetchBlob, digest: str,
                       keys: Sequence[TrustedKey], sig: str) -> SignatureCheck:
    if not isinstance(layer, dict):
        raise Malformed("a layer is not an object")
    if layer.get("mediaType") != SIMPLESIGNING:
        raise Malformed(f"layer media type is not {SIMPLESIGNING}")
    annotations = layer.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise Malformed("layer annotations are not an object")
    signature = b64decode(annotations.get(SIGNATURE_ANNOTATION), "the signature annotation")
    size = layer.get("size")
    blob = layer.get("digest")
    if not isinstance(size, int) or not isinstance(blob, str) or not 0 < size <= MAX_DOCUMENT:
        raise Malformed(f"the payload descriptor is not one of at most {MAX_DOCUMENT} bytes")
    payload = await fetch(blob, size)
    signer = signer_of(keys, signature, payload)
    if signer is None:
        cert = _certificate_key(annotations)
        if cert is not None:  # the key it names: we can tell bad from untrusted
            key, subject = cert
            if not verifies(key, signature, payload):
                return invalid(COSIGN, sig, BAD_SIGNATURE,
                               "the certificate's key does not verify the signature",
                               subject, position)
            return invalid(COSIGN, sig, UNKNOWN_KEY, f"signed by {subject}, not a trusted key",
                           fingerprint(key), position)
        return invalid(COSIGN, sig, UNKNOWN_KEY,
                       "no trusted key verifies the signature over this payload", "", position)
    named = signed_digest(payload)
    if named != digest:
        return invalid(COSIGN, sig, WRONG_DIGEST, f"signature is for {named}", signer.name,
                       position)
    return SignatureCheck(COSIGN, sig, signer.name, True, position=position, key=signer.name)


async def verify_cosign(manifest: bytes, sig: str, digest: str, keys: Sequence[TrustedKey],
                        fetch: FetchBlob) -> list[SignatureCheck]:
    """One check per signature (layer) of the cosign signature manifest `manifest`
    (whose digest is `sig`) for manifest `digest`."""
    try:
        doc = json_object(manifest, "the signature manifest")
        layers = field_of(doc, "layers", kind=list)
        if not layers:
            raise Malformed("the signature manifest has no layers")
    except Malformed as exc:
        return [invalid(COSIGN, sig, MALFORMED, str(exc))]
    checks = []
    for position, layer in enumerate(layers[:MAX_LAYERS]):
        try:
            checks.append(await _check_layer(layer, position, fetch, digest, keys, sig))
        except Malformed as exc:
            checks.append(invalid(COSIGN, sig, MALFORMED, str(exc), "", position))
    return checks
