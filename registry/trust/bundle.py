"""Sigstore bundles v0.3 with a key, as cosign v3 writes them for an image
(`cosign sign --key K --new-bundle-format`, cosign's default since v3).

What cosign signs in that mode is not the simple-signing payload but an in-toto
statement (v1) whose subject is the manifest digest and whose predicate type is
`https://sigstore.dev/cosign/sign/v1` (empty predicate), in a DSSE envelope
(payload type `application/vnd.in-toto+json`): the ECDSA signature is over the
envelope's pre-authentication encoding. The bundle names the key by a hint,
base64(SHA-256(DER public key)), as cosign does, and carries no transparency log
entry (the registry signs offline, as `--tlog-upload=false` does; verifiers are
told to expect none).

The bundle is stored as an OCI 1.1 referrer of the signed manifest, as cosign's
`WriteAttestationNewBundleFormat` does: artifactType and layer media type
`application/vnd.dev.sigstore.bundle.v0.3+json`, the empty config `{}`.

Pure: this module makes documents; registry/trust/signer.py stores them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from registry.core.grammar import Digest
from registry.trust.keys import Signer
from registry.trust.simplesigning import OCI_MANIFEST, descriptor

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
# The annotations cosign puts on the referrer (remote.BundlePredicateType and friends).
CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
CREATED_ANNOTATION = "org.opencontainers.image.created"


def statement(digest: Digest) -> bytes:
    """The in-toto statement cosign signs for manifest `digest`."""
    doc = {"_type": STATEMENT_TYPE, "subject": [{"digest": {digest.algorithm: digest.hex}}],
           "predicateType": PREDICATE_TYPE, "predicate": {}}
    return json.dumps(doc, separators=(",", ":")).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def make(digest: Digest, signer: Signer) -> bytes:
    """The bundle (JSON) of `signer`'s signature over the statement naming `digest`."""
    body = statement(digest)
    sig = signer.sign(pae(PAYLOAD_TYPE, body))
    doc = {"mediaType": MEDIA_TYPE,
           "verificationMaterial": {"publicKey": {"hint": signer.key.hint},
                                    "tlogEntries": []},
           "dsseEnvelope": {"payload": base64.b64encode(body).decode(),
                            "payloadType": PAYLOAD_TYPE,
                            "signatures": [{"sig": base64.b64encode(sig).decode()}]}}
    return json.dumps(doc, separators=(",", ":")).encode()


def referrer_manifest(bundle: bytes, subject: dict[str, Any], created: str) -> bytes:
    """The OCI 1.1 referrer holding `bundle` for the manifest `subject`."""
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": MEDIA_TYPE,
           "config": descriptor(EMPTY_CONFIG_TYPE, EMPTY_CONFIG),
           "layers": [descriptor(MEDIA_TYPE, bundle)], "subject": subject,
           "annotations": {CREATED_ANNOTATION: created, CONTENT_ANNOTATION: "dsse-envelope",
                           PREDICATE_ANNOTATION: PREDICATE_TYPE}}
    return json.dumps(doc, separators=(",", ":")).encode()
