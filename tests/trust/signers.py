"""Signatures made in the tests with `cryptography`, laid out exactly as the tools that
make them in the field do, so the verifier is tested against the clients' documents:

- cosign 2.x `cosign sign --key` (sigstore/cosign pkg/oci/static, pkg/cosign/payload):
  an OCI image manifest tagged `sha256-<hex>.sig`, a config naming the payload as its
  one diff_id, one layer per signature of media type
  application/vnd.dev.cosign.simplesigning.v1+json, the base64 DER ECDSA signature in
  the layer annotation `dev.cosignproject.cosign/signature`;
- cosign 3 `--new-bundle-format` with a key: a sigstore bundle v0.3 whose DSSE envelope
  holds an in-toto statement (predicate https://sigstore.dev/cosign/sign/v1) naming the
  image digest, pushed as an OCI 1.1 referrer of artifact type
  application/vnd.dev.sigstore.bundle.v0.3+json;
- `notation sign` (notaryproject specification, signature-envelope-jws.md): a referrer
  of artifact type application/vnd.cncf.notary.signature, the empty config, one
  application/jose+json layer holding a flattened JWS JSON serialization whose payload
  is `{"targetArtifact": descriptor}`, the protected header with `alg`, `crit`, `cty`,
  `io.cncf.notary.signingScheme` and `io.cncf.notary.signingTime`, the certificate chain
  in the unprotected header's `x5c`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pushing import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
NOTARY_TYPE = "application/vnd.cncf.notary.signature"
JOSE = "application/jose+json"
IN_TOTO = "application/vnd.in-toto+json"


def pem(key: Any) -> bytes:
    """The public half of a private key, PEM."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign(key: Any, data: bytes) -> bytes:
    """As cosign signs: ECDSA-SHA256 DER, RSA PKCS#1 v1.5 SHA-256, Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding

        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign(data)


@dataclass
class Doc:
    """A manifest to push with the blobs it names: [(bytes)]."""

    manifest: bytes
    blobs: list[bytes]
    tag: str | None = None

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def _dumps(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


# -- cosign simple signing -------------------------------------------------------


def simple_signing_payload(reference: str, digest: str) -> bytes:
    return _dumps({"critical": {"identity": {"docker-reference": reference},
                                "image": {"docker-manifest-digest": digest},
                                "type": "cosign container image signature"},
                   "optional": None})


def cosign_layer(key: Any, payload: bytes, signature: bytes | None = None) -> dict:
    sig = signature if signature is not None else sign(key, payload)
    return {"mediaType": SIMPLESIGNING, "size": len(payload), "digest": digest_of(payload),
            "annotations": {"dev.cosignproject.cosign/signature":
                            base64.b64encode(sig).decode()}}


def cosign_signature(layers: list[tuple[dict, bytes]], digest: str) -> Doc:
    """The `sha256-<hex>.sig` manifest of `digest` carrying (layer, payload) pairs."""
    config = _dumps({"architecture": "", "created": "0001-01-01T00:00:00Z",
                     "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                     "rootfs": {"type": "layers",
                                "diff_ids": [layer["digest"] for layer, _ in layers]},
                     "config": {}})
    manifest = _dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": OCI_CONFIG, "size": len(config),
                                  "digest": digest_of(config)},
                       "layers": [layer for layer, _ in layers]})
    return Doc(manifest, [config] + [p for _, p in layers],
               digest.replace(":", "-", 1) + ".sig")


def cosign_sign(key: Any, reference: str, digest: str, *, signed_digest: str | None = None,
                tamper: bool = False) -> Doc:
    """`cosign sign --key` of `reference@digest` (signing `signed_digest` instead if
    given; `tamper`: the payload altered after signing)."""
    payload = simple_signing_payload(reference, signed_digest or digest)
    layer = cosign_layer(key, payload)
    if tamper:
        payload = payload.replace(b'"optional":null', b'"optional":{"x":"y"}')
        layer = {**layer, "size": len(payload), "digest": digest_of(payload)}
    return cosign_signature([(layer, payload)], digest)


# -- sigstore bundle v0.3 ------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def key_hint(key: Any) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def statement(reference: str, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":", 1)
    return _dumps({"_type": "https://in-toto.io/Statement/v1",
                   "subject": [{"name": reference, "digest": {algorithm: hexdigest}}],
                   "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}})


def bundle_dsse(key: Any, reference: str, digest: str, *, tamper: bool = False,
                hint: bool = True) -> bytes:
    payload = statement(reference, digest)
    sig = sign(key, pae(IN_TOTO, payload))
    if tamper:
        payload = payload.replace(b'"predicate":{}', b'"predicate":{"x":1}')
    material: dict[str, Any] = {"publicKey": {"hint": key_hint(key) if hint else ""},
                                "tlogEntries": [], "timestampVerificationData": {}}
    return _dumps({"mediaType": BUNDLE_TYPE, "verificationMaterial": material,
                   "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                                    "payloadType": IN_TOTO,
                                    "signatures": [{"sig": base64.b64encode(sig).decode(),
                                                    "keyid": ""}]}})


def bundle_message(key: Any, subject_bytes: bytes) -> bytes:
    """A messageSignature bundle over the manifest's bytes (what `cosign sign-blob
    --new-bundle-format` makes of a file)."""
    sig = sign(key, subject_bytes)
    return _dumps({"mediaType": BUNDLE_TYPE,
                   "verificationMaterial": {"publicKey": {"hint": key_hint(key)}},
                   "messageSignature": {
                       "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(
                           hashlib.sha256(subject_bytes).digest()).decode()},
                       "signature": base64.b64encode(sig).decode()}})


def referrer(subject: dict, artifact_type: str, layer_type: str, blob: bytes,
             annotations: dict | None = None) -> Doc:
    """An OCI 1.1 referrer: the empty config, one layer, `subject`."""
    empty = b"{}"
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "artifactType": artifact_type,
                           "config": {"mediaType": OCI_EMPTY, "size": 2,
                                      "digest": digest_of(empty)},
                           "layers": [{"mediaType": layer_type, "size": len(blob),
                                       "digest": digest_of(blob)}],
                           "subject": subject}
    if annotations:
        doc["annotations"] = annotations
    return Doc(_dumps(doc), [empty, blob])


def bundle_referrer(subject: dict, bundle: bytes) -> Doc:
    return referrer(subject, BUNDLE_TYPE, BUNDLE_TYPE, bundle,
                    {"dev.sigstore.bundle.content": "dsse-envelope",
                     "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"})


# -- Notation ----------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notary"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(cn: str, key: Any, issuer: tuple[x509.Certificate, Any] | None = None, *,
                ca: bool = False, days: int = 30,
                start: datetime.datetime | None = None) -> x509.Certificate:
    """A certificate as `notation cert generate-test` makes them (CA: basic constraints
    and keyCertSign; leaf: digitalSignature and the code-signing EKU)."""
    now = start or datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    b = (x509.CertificateBuilder().subject_name(_name(cn))
         .issuer_name(issuer_cert.subject if issuer_cert else _name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, False,
                                          False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                          False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws_envelope(key: Any, chain: list[x509.Certificate], target: dict, *,
                 signing_time: datetime.datetime | None = None,
                 expiry: datetime.datetime | None = None, tamper: bool = False) -> bytes:
    """`notation sign` of the manifest described by `target` (ES256 or PS256)."""
    when = signing_time or datetime.datetime.now(datetime.UTC)
    protected: dict[str, Any] = {
        "alg": "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "PS256",
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if expiry is not None:
        protected["crit"].append("io.cncf.notary.expiry")
        protected["io.cncf.notary.expiry"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = _dumps({"targetArtifact": target})
    signing_input = f"{b64url(_dumps(protected))}.{b64url(payload)}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        from cryptography.hazmat.primitives.asymmetric import padding

        sig = key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                       hashes.SHA256())
    if tamper:
        payload = _dumps({"targetArtifact": {**target, "annotations": {"x": "y"}}})
    return _dumps({"payload": b64url(payload), "protected": b64url(_dumps(protected)),
                   "header": {"x5c": [base64.b64encode(
                       c.public_bytes(serialization.Encoding.DER)).decode() for c in chain],
                       "io.cncf.notary.signingAgent": "notation-go/1.3.0"},
                   "signature": b64url(sig)})


def notation_referrer(subject: dict, envelope: bytes, chain: list[x509.Certificate]) -> Doc:
    prints = [hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()
              for c in chain]
    return referrer(subject, NOTARY_TYPE, JOSE, envelope,
                    {"io.cncf.notary.x509chain.thumbprint#S256": json.dumps(prints),
                     "org.opencontainers.image.created": "2026-12-07T20:00:00Z"})


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
