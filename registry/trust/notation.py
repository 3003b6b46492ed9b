"""Notation signatures (notaryproject specification: signature-specification.md,
signature-envelope-jws.md, trust-store-trust-policy.md), JWS envelopes only.

The signature is a referrer of the signed manifest whose artifact type is
NOTARY_TYPE, with one layer of media type `application/jose+json`: a flattened JWS
JSON serialization `{"payload", "protected", "header": {"x5c": [...]}, "signature"}`.
The payload is `{"targetArtifact": <descriptor of the signed manifest>}`; the
protected header names `alg` (PS256/384/512, ES256/384/512), `cty`
(application/vnd.cncf.notary.payload.v1+json), `io.cncf.notary.signingScheme`
(listed in `crit`), `io.cncf.notary.signingTime` and maybe `io.cncf.notary.expiry`;
`x5c` is the certificate chain, signer first.

Checked, in this order: the envelope's shape (malformed), the signature with the
signer's certificate's key over `protected.payload` (bad signature), the chain
certificate by certificate up to a certificate of the trust store, `[trust]
notation_certs` (untrusted chain), every certificate's validity now and at the
signing time and the envelope's expiry (expired), and the target's digest (wrong
digest). Timestamp countersignatures, revocation, path-length constraints and
the signing certificate's key usage and EKU are not checked.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from registry.trust.checks import (
    BAD_SIGNATURE,
    EXPIRED,
    MALFORMED,
    NOTATION,
    UNTRUSTED_CHAIN,
    WRONG_DIGEST,
    Malformed,
    SignatureCheck,
    b64decode,
    field_of,
    invalid,
    json_object,
)
from registry.trust.cosign_verify import FetchBlob

NOTARY_TYPE = "application/vnd.cncf.notary.signature"
JWS_TYPE = "application/jose+json"
COSE_TYPE = "application/cose"
PAYLOAD_CTY = "application/vnd.cncf.notary.payload.v1+json"
SCHEMES = ("notary.x509", "notary.x509.signingAuthority")
SIGNING_SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
EXPIRY = "io.cncf.notary.expiry"
# Critical headers this verifier understands (anything else in `crit` refuses it).
KNOWN_CRITICAL = {SIGNING_SCHEME, EXPIRY, "io.cncf.notary.authenticSigningTime",
                  "io.cncf.notary.verificationPlugin",
                  "io.cncf.notary.verificationPluginMinVersion"}
MAX_CHAIN = 10

_HASHES: dict[str, hashes.HashAlgorithm] = {"256": hashes.SHA256(), "384": hashes.SHA384(),
                                            "512": hashes.SHA512()}

TrustStore = Sequence[tuple[str, x509.Certificate]]


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file; ValueError if there is none."""
    certs = x509.load_pem_x509_certificates(pem)
    if not certs:
        raise ValueError("no certificate")
    return certs


def _time(value: Any, what: str) -> datetime.datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Malformed(f"{what} is not an RFC 3339 time")
    try:
        t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{what} is not an RFC 3339 time") from None
    if t.tzinfo is None:
        raise Malformed(f"{what} has no time zone")
    return t


def _jws_signature_ok(alg: str, cert: x509.Certificate, signature: bytes,
                      signing_input: bytes) -> bool:
    key = cert.public_key()
    digest = _HASHES.get(alg[2:])
    if digest is None:
        return False
    try:
        if alg.startswith("ES") and isinstance(key, ec.EllipticCurvePublicKey):
            half = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * half:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                       int.from_bytes(signature[half:], "big"))
            key.verify(der, signing_input, ec.ECDSA(digest))
        elif alg.startswith("PS") and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input,
                       padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """`issuer` is a CA certificate whose key signed `cert`."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            return False
        cert.verify_directly_issued_by(issuer)
    except (x509.ExtensionNotFound, InvalidSignature, ValueError, TypeError,
            UnsupportedAlgorithm):
        return False
    return True


def trusted_root(chain: Sequence[x509.Certificate], store: TrustStore) -> str | None:
    """The name of the trust-store certificate the chain leads to, or None: each
    certificate must be issued by the next, until one is in the store or issued
    by a certificate of it."""
    for i, cert in enumerate(chain):
        for name, anchor in store:
            if cert == anchor or _issued_by(cert, anchor):
                return name
        if i + 1 == len(chain) or not _issued_by(cert, chain[i + 1]):
            return None
    return None


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()[:200]


def _parse(envelope: bytes) -> tuple[dict[str, Any], dict[str, Any], list[x509.Certificate],
                                     bytes, bytes]:
    """(protected header, payload, chain, signature, signing input)."""
    env = json_object(envelope, "the JWS envelope")
    protected_b64 = field_of(env, "protected")
    payload_b64 = field_of(env, "payload")
    protected = json_object(b64decode(protected_b64, "the protected header", urlsafe=True),
                            "the protected header")
    payload = json_object(b64decode(payload_b64, "the payload", urlsafe=True), "the payload")
    signature = b64decode(field_of(env, "signature"), "the signature", urlsafe=True)
    x5c = field_of(env, "header", "x5c", kind=list)
    if not 0 < len(x5c) <= MAX_CHAIN:
        raise Malformed(f"x5c must hold 1 to {MAX_CHAIN} certificates")
    try:
        chain = [x509.load_der_x509_certificate(b64decode(c, "an x5c certificate"))
                 for c in x5c]
    except ValueError:
        raise Malformed("an x5c certificate is not DER") from None
    alg = field_of(protected, "alg")
    if alg not in ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512"):
        raise Malformed(f"alg {alg[:20]!r} is not one Notation allows")
    if protected.get("cty") != PAYLOAD_CTY:
        raise Malformed(f"cty is not {PAYLOAD_CTY}")
    crit = field_of(protected, "crit", kind=list)
    if SIGNING_SCHEME not in crit or not set(map(str, crit)) <= KNOWN_CRITICAL:
        raise Malformed(f"crit must list {SIGNING_SCHEME} and only headers Notation defines")
    if EXPIRY in protected and EXPIRY not in crit:
        raise Malformed(f"{EXPIRY} must be critical")
    if field_of(protected, SIGNING_SCHEME) not in SCHEMES:
        raise Malformed(f"{SIGNING_SCHEME} is not one of {', '.join(SCHEMES)}")
    _time(protected.get(SIGNING_TIME), SIGNING_TIME)
    return protected, payload, chain, signature, f"{protected_b64}.{payload_b64}".encode()


def check_envelope(envelope: bytes, sig: str, digest: str, store: TrustStore,
                   now: datetime.datetime | None = None) -> SignatureCheck:
    """The check of one JWS envelope for manifest `digest`."""
    protected, payload, chain, signature, signing_input = _parse(envelope)
    leaf = chain[0]
    who = _subject(leaf)
    if not _jws_signature_ok(protected["alg"], leaf, signature, signing_input):
        return invalid(NOTATION, sig, BAD_SIGNATURE,
                       "the signing certificate's key does not verify the signature", who)
    root = trusted_root(chain, store)
    if root is None:
        return invalid(NOTATION, sig, UNTRUSTED_CHAIN,
                       "the certificate chain ends at no certificate of [trust] notation_certs",
                       who)
    now = now or datetime.datetime.now(datetime.UTC)
    signed_at = _time(protected[SIGNING_TIME], SIGNING_TIME)
    if EXPIRY in protected and _time(protected[EXPIRY], EXPIRY) <= now:
        return invalid(NOTATION, sig, EXPIRED, f"the signature expired at {protected[EXPIRY]}",
                       who)
    for cert in chain:
        for when, what in ((now, "now"), (signed_at, "at signing time")):
            if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
                return invalid(NOTATION, sig, EXPIRED,
                               f"certificate {_subject(cert)} is not valid {what} (valid "
                               f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                               f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})", who)
    target = field_of(payload, "targetArtifact", "digest")[:200]
    if target != digest:
        return invalid(NOTATION, sig, WRONG_DIGEST, f"signature is for {target}", who)
    return SignatureCheck(NOTATION, sig, who, True, key=root)


async def verify_notation(manifest: bytes, sig: str, digest: str, store: TrustStore,
                          fetch: FetchBlob) -> list[SignatureCheck]:
    """The check of the Notation referrer `manifest` (digest `sig`) for `digest`."""
    try:
        doc = json_object(manifest, "the signature manifest")
        layers = field_of(doc, "layers", kind=list)
        if len(layers) != 1 or not isinstance(layers[0], dict):
            raise Malformed("a Notation signature manifest has exactly one layer")
        layer = layers[0]
        if layer.get("mediaType") == COSE_TYPE:
            raise Malformed("COSE envelopes are not supported, only JWS")
        if layer.get("mediaType") != JWS_TYPE:
            raise Malformed(f"the layer is not {JWS_TYPE}")
        size = layer.get("size")
        if not isinstance(size, int) or not isinstance(layer.get("digest"), str):
            raise Malformed("the envelope's descriptor is not one")
        return [check_envelope(await fetch(layer["digest"], size), sig, digest, store)]
    except (Malformed, ValueError) as exc:  # ValueError: a certificate cryptography refuses
        return [invalid(NOTATION, sig, MALFORMED, str(exc))]
