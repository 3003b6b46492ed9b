"""What a verification says, and the small pieces every format's verifier shares:
trusted keys, bounded decoding of hostile documents, one signature check per key type.

A signature is judged by one `SignatureCheck`: its format, who signed it (a trusted
key's name, a certificate's subject, or a fingerprint when nobody we trust did),
whether it holds, and if not, why, as one of REASONS. Decoding never raises on bad
input: every helper here raises `Malformed`, which the verifiers turn into a
"malformed" check, so a hostile document costs a verdict, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

# Formats, as checks and the index name them.
COSIGN = "cosign"  # simple signing: the `sha256-<hex>.sig` tag or an OCI 1.1 referrer
BUNDLE = "sigstore-bundle"  # sigstore bundle v0.3 (cosign v3), a referrer
NOTATION = "notation"  # Notation JWS, a referrer

# Why a signature does not count (`SignatureCheck.reason`; "" when it is valid).
UNSIGNED = "unsigned"  # no signature at all (a Judgement's reason, never a check's)
UNKNOWN_KEY = "unknown key"  # no trusted key verifies it
BAD_SIGNATURE = "bad signature"  # the key it names does not verify it
WRONG_DIGEST = "wrong digest"  # it signs another manifest
EXPIRED = "expired"  # its certificate or its own expiry is past
UNTRUSTED_CHAIN = "untrusted chain"  # its certificate chain ends at no trusted root
MALFORMED = "malformed"  # the document cannot be read as its format says
REASONS = (UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, WRONG_DIGEST, EXPIRED, UNTRUSTED_CHAIN,
           MALFORMED)

# Bounds on what a verifier reads: signature documents are small.
MAX_DOCUMENT = 1 << 20  # a payload, a bundle, a JWS envelope
MAX_LAYERS = 64  # signatures in one cosign signature manifest


_URLSAFE = re.compile(r"[A-Za-z0-9_-]*")


class Malformed(Exception):
    """A signature document is not what its format says (the message says how)."""


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The verdict on one signature of a manifest: `signature` is the digest of the
    manifest that carries it (and `position` its layer there), `identity` the key
    name or certificate subject that signed it, or a fingerprint when none we trust
    did; `reason` is one of REASONS ("" when valid), `detail` says more."""

    format: str
    signature: str
    identity: str
    valid: bool
    reason: str = ""
    detail: str = ""
    position: int = 0
    key: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "signature": self.signature,
                "position": self.position, "identity": self.identity, "key": self.key,
                "valid": self.valid, "reason": self.reason, "detail": self.detail}


def invalid(fmt: str, signature: str, reason: str, detail: str, identity: str = "",
            position: int = 0) -> SignatureCheck:
    """A check that does not hold."""
    return SignatureCheck(fmt, signature, identity, False, reason, detail[:300], position)


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key whose signatures count, under the name it is known by (a key of
    the registry's key store, or the file a `--key` came from)."""

    name: str
    key: PublicKeyTypes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


def fingerprint(key: PublicKeyTypes) -> str:
    """sha256 of the key's DER SubjectPublicKeyInfo, hex: how checks name a key nobody
    named."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def key_hint(key: PublicKeyTypes) -> str:
    """The key's hint as sigstore bundles carry it: base64 of the sha256 of its DER
    SubjectPublicKeyInfo (what cosign writes in `publicKey.hint`)."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.standard_b64encode(hashlib.sha256(der).digest()).decode()


def load_public_key(pem: bytes, name: str) -> TrustedKey:
    """A PEM public key (or a certificate, whose key is taken); ValueError if neither."""
    if len(pem) > 64 << 10:
        raise ValueError(f"{name}: larger than 64 KiB, not a public key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        from cryptography import x509

        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError(f"{name}: not a PEM public key or certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey
                      | ed25519.Ed25519PublicKey):
        raise ValueError(f"{name}: only ECDSA, RSA and Ed25519 keys are supported")
    return TrustedKey(name, key)


# -- bounded decoding ---------------------------------------------------------


def b64decode(text: Any, what: str, *, urlsafe: bool = False) -> bytes:
    """Standard (or URL-safe, unpadded) base64 of at most MAX_DOCUMENT bytes."""
    if not isinstance(text, str) or len(text) > MAX_DOCUMENT * 4 // 3 + 4:
        raise Malformed(f"{what} is not a base64 string of at most {MAX_DOCUMENT} bytes")
    try:
        if urlsafe:  # JWS: unpadded, and only the URL-safe alphabet
            if not _URLSAFE.fullmatch(text):
                raise Malformed(f"{what} is not unpadded URL-safe base64")
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"{what} is not valid base64") from None


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object of at most MAX_DOCUMENT bytes."""
    if len(data) > MAX_DOCUMENT:
        raise Malformed(f"{what} is larger than {MAX_DOCUMENT} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise Malformed(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise Malformed(f"{what} is not a JSON object")
    return doc


def field_of(doc: Any, *path: str, kind: type = str) -> Any:
    """doc[path[0]][path[1]]... of type `kind`; Malformed naming the path if absent."""
    value = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise Malformed(f"no {'.'.join(path)}")
        value = value[key]
    if not isinstance(value, kind):
        raise Malformed(f"{'.'.join(path)} is not a {kind.__name__}")
    return value


# -- signatures ---------------------------------------------------------------


def _hash_for(key: PublicKeyTypes) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {384: hashes.SHA384(), 521: hashes.SHA512()}.get(key.curve.key_size,
                                                                 hashes.SHA256())
    return hashes.SHA256()


def verifies(key: PublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """Whether `signature` (DER for ECDSA, as cosign writes it; PKCS#1 v1.5 or PSS for
    RSA) is `key`'s over `data`, with the hash cosign pairs with the key."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_hash_for(key)))
        elif isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()),
                                                        padding.PSS.AUTO), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verifies_digest(key: PublicKeyTypes, signature: bytes, digest: bytes) -> bool:
    """Whether `signature` is `key`'s over a message whose SHA-256 is `digest` (a
    bundle's messageSignature): ECDSA and RSA only, Ed25519 signs messages, not hashes."""
    if len(digest) != 32:
        return False
    prehashed = Prehashed(hashes.SHA256())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signer_of(keys: Iterable[TrustedKey], signature: bytes, data: bytes) -> TrustedKey | None:
    """The first trusted key that verifies `signature` over `data`."""
    for k in keys:
        if verifies(k.key, signature, data):
            return k
    return None
