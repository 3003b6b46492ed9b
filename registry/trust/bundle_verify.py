"""sigstore bundles v0.3 with a public key, as cosign v3 writes them (`cosign sign
--key --new-bundle-format`; sigstore/protobuf-specs `Bundle`).

The bundle is the one layer (media type BUNDLE_TYPE) of a referrer of the signed
manifest whose artifact type is BUNDLE_TYPE. It holds `verificationMaterial` (for a
key: `publicKey.hint`, base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo;
for a certificate, `certificate.rawBytes` or `x509CertificateChain`) and one of:

- `dsseEnvelope`: `payloadType`, base64 `payload` (an in-toto statement whose
  `subject[].digest` names the image) and `signatures[].sig`, each over DSSE's
  pre-authentication encoding `DSSEv1 <len type> <type> <len payload> <payload>`;
- `messageSignature`: `messageDigest` {algorithm SHA2_256, base64 digest} of the
  signed bytes (here the manifest: its sha256 is the manifest digest) and the
  base64 `signature` over them.

Transparency-log entries and timestamps are not checked: a key-based signature is
judged by the key, as `cosign verify --key --insecure-ignore-tlog` does.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from registry.trust.checks import (
    BAD_SIGNATURE,
    BUNDLE,
    MALFORMED,
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
    key_hint,
    verifies,
    verifies_digest,
)
from registry.trust.cosign_verify import FetchBlob

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
# The same version as protobuf-specs also names it.
BUNDLE_TYPES = (BUNDLE_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of a payload: what its signatures cover."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _statement_digests(payload: bytes) -> list[str]:
    """The digests an in-toto statement's subjects name, as `alg:hex`."""
    doc = json_object(payload, "the DSSE payload")
    subjects = field_of(doc, "subject", kind=list)
    out = []
    for s in subjects[:64]:
        digests = s.get("digest") if isinstance(s, dict) else None
        if not isinstance(digests, dict):
            raise Malformed("a statement subject has no digest map")
        out += [f"{alg}:{value}" for alg, value in digests.items() if isinstance(value, str)]
    if not out:
        raise Malformed("the statement names no subject digest")
    return out


def _certificate(material: dict[str, Any]) -> x509.Certificate | None:
    raw: Any = None
    if isinstance(material.get("certificate"), dict):
        raw = material["certificate"].get("rawBytes")
    elif isinstance(material.get("x509CertificateChain"), dict):
        certs = material["x509CertificateChain"].get("certificates")
        if isinstance(certs, list) and certs and isinstance(certs[0], dict):
            raw = certs[0].get("rawBytes")
    if raw is None:
        return None
    try:
        return x509.load_der_x509_certificate(b64decode(raw, "the certificate"))
    except ValueError:
        raise Malformed("the bundle's certificate is not DER") from None


def _candidates(material: dict[str, Any], keys: Sequence[TrustedKey]
                ) -> tuple[list[TrustedKey], PublicKeyTypes | None, str, bool]:
    """(trusted keys to try, the key the bundle names if it names one we do not trust,
    how the signer is named, whether the bundle named the one key to try)."""
    cert = _certificate(material)
    if cert is not None:
        key = cert.public_key()
        mine = [k for k in keys if k.fingerprint == fingerprint(key)]
        return mine, None if mine else key, cert.subject.rfc4514_string()[:200], bool(mine)
    public = material.get("publicKey")
    hint = public.get("hint") if isinstance(public, dict) else None
    if isinstance(hint, str) and hint:
        named = [k for k in keys if key_hint(k.key) == hint]
        if named:  # the bundle says which key: only that one may verify it
            return named, None, named[0].name, True
        return list(keys), None, f"hint {hint[:60]}", False
    return list(keys), None, "", False


def _verdict(keys: list[TrustedKey], foreign: PublicKeyTypes | None, named: str,
             hinted: bool, ok: Callable[[PublicKeyTypes], bool],
             sig: str) -> TrustedKey | SignatureCheck:
    for k in keys:
        if ok(k.key):
            return k
    if foreign is not None:
        if ok(foreign):
            return invalid(BUNDLE, sig, UNKNOWN_KEY, f"signed by {named}, not a trusted key",
                           fingerprint(foreign))
        return invalid(BUNDLE, sig, BAD_SIGNATURE,
                       "the certificate's key does not verify the signature", named)
    if hinted and keys:
        return invalid(BUNDLE, sig, BAD_SIGNATURE,
                       f"key {keys[0].name} (named by the bundle) does not verify it",
                       keys[0].name)
    return invalid(BUNDLE, sig, UNKNOWN_KEY, "no trusted key verifies the signature", named)


def check_bundle(bundle: bytes, sig: str, digest: str,
                 keys: Sequence[TrustedKey]) -> SignatureCheck:
    """The check of one bundle for manifest `digest`."""
    doc = json_object(bundle, "the bundle")
    if not str(field_of(doc, "mediaType")).startswith("application/vnd.dev.sigstore.bundle"):
        raise Malformed("not a sigstore bundle media type")
    material = field_of(doc, "verificationMaterial", kind=dict)
    candidates, foreign, named, hinted = _candidates(material, keys)
    if "dsseEnvelope" in doc:
        env = field_of(doc, "dsseEnvelope", kind=dict)
        payload_type = field_of(env, "payloadType")
        payload = b64decode(field_of(env, "payload"), "the DSSE payload")
        signatures = field_of(env, "signatures", kind=list)
        if not signatures:
            raise Malformed("the DSSE envelope has no signature")
        signature = b64decode(field_of(signatures[0], "sig"), "the DSSE signature")
        message = pae(payload_type, payload)
        got = _verdict(candidates, foreign, named, hinted,
                       lambda k: verifies(k, signature, message), sig)
        if isinstance(got, SignatureCheck):
            return got
        named_digests = _statement_digests(payload)
        if digest not in named_digests:
            return invalid(BUNDLE, sig, WRONG_DIGEST, f"signature is for {named_digests[0]}",
                           got.name)
        return SignatureCheck(BUNDLE, sig, got.name, True, key=got.name)
    ms = field_of(doc, "messageSignature", kind=dict)
    if field_of(ms, "messageDigest", "algorithm") != "SHA2_256":
        raise Malformed("messageDigest is not SHA2_256")
    message_digest = b64decode(field_of(ms, "messageDigest", "digest"), "the message digest")
    signature = b64decode(field_of(ms, "signature"), "the signature")
    got = _verdict(candidates, foreign, named, hinted,
                   lambda k: verifies_digest(k, signature, message_digest), sig)
    if isinstance(got, SignatureCheck):
        return got
    signed = "sha256:" + binascii.hexlify(message_digest).decode()
    if signed != digest:
        return invalid(BUNDLE, sig, WRONG_DIGEST, f"signature is for {signed}", got.name)
    return SignatureCheck(BUNDLE, sig, got.name, True, key=got.name)


async def verify_bundle(manifest: bytes, sig: str, digest: str, keys: Sequence[TrustedKey],
                        fetch: FetchBlob) -> list[SignatureCheck]:
    """The check of the bundle referrer `manifest` (digest `sig`) for `digest`."""
    try:
        doc = json_object(manifest, "the bundle manifest")
        layers = field_of(doc, "layers", kind=list)
        layer = next((x for x in layers if isinstance(x, dict)
                      and x.get("mediaType") in BUNDLE_TYPES), None)
        if layer is None:
            raise Malformed("the bundle manifest has no bundle layer")
        size = layer.get("size")
        if not isinstance(size, int) or not isinstance(layer.get("digest"), str):
            raise Malformed("the bundle layer's descriptor is not one")
        return [check_bundle(await fetch(layer["digest"], size), sig, digest, keys)]
    except Malformed as exc:
        return [invalid(BUNDLE, sig, MALFORMED, str(exc))]
