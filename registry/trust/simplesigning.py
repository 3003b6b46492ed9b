"""cosign's simple signing, as `cosign sign --key` lays it out (the format before
sigstore bundles, which `cosign verify --key` and containers/image still read).

The payload is a JSON document naming the image by repository and manifest digest;
the signature is ECDSA over it, DER, base64 in the layer annotation
`dev.cosignproject.cosign/signature`; the layer (media type
`application/vnd.dev.cosign.simplesigning.v1+json`) is the payload itself. Two
manifests carry it:

- the legacy one, tagged `sha256-<hex>.sig` in the signed image's repository, an
  image whose layers are every signature made of that digest (a new one is
  appended, as cosign appends), with an image config naming them as its rootfs;
- an OCI 1.1 referrer of the signed manifest (artifactType
  `application/vnd.dev.cosign.artifact.sig.v1+json`, as cosign's OCI 1.1 mode
  writes it), holding this signature alone.

Pure: this module makes documents; registry/trust/signer.py stores them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from registry.core.grammar import Digest
from registry.trust.keys import Signer, TrustKey

PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
# go-containerregistry's zero time: cosign records no creation time by default.
ZERO_TIME = "0001-01-01T00:00:00Z"
# cosign refuses a signature image of more layers than this.
MAX_LAYERS = 1000


def tag_for(digest: Digest) -> str:
    """The tag cosign looks for signatures of `digest` under: `sha256-<hex>.sig`."""
    return f"{digest.algorithm}-{digest.hex}.sig"


def payload(reference: str, digest: Digest, optional: dict[str, str] | None = None) -> bytes:
    """The simple-signing payload for the manifest `digest` of `reference`
    (`host/repository`), as cosign marshals it (keys in this order, no spaces)."""
    doc = {"critical": {"identity": {"docker-reference": reference},
                        "image": {"docker-manifest-digest": str(digest)},
                        "type": SIGNATURE_TYPE},
           "optional": optional or None}
    return json.dumps(doc, separators=(",", ":")).encode()


def descriptor(media_type: str, data: bytes,
               annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An OCI descriptor of `data`."""
    desc: dict[str, Any] = {"mediaType": media_type, "size": len(data),
                            "digest": str(Digest.of(data))}
    if annotations:
        desc["annotations"] = annotations
    return desc


def signature_layer(data: bytes, signer: Signer) -> dict[str, Any]:
    """The layer descriptor of `data` (a payload) carrying `signer`'s signature."""
    sig = base64.b64encode(signer.sign(data)).decode()
    return descriptor(PAYLOAD_TYPE, data, {SIGNATURE_ANNOTATION: sig})


def signed_by(layer: dict[str, Any], data: bytes, key: TrustKey) -> bool:
    """Whether the layer's signature over `data` (its bytes) is `key`'s."""
    raw = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
    if not isinstance(raw, str):
        return False
    try:
        sig = base64.b64decode(raw, validate=True)
    except ValueError:
        return False
    return key.verify(sig, data)


def image_config(layers: list[dict[str, Any]]) -> bytes:
    """The image config of a signature image, as go-containerregistry writes one for
    an empty image with these layers appended (uncompressed: diff ids are digests)."""
    doc = {"architecture": "", "created": ZERO_TIME,
           "history": [{"created": ZERO_TIME} for _ in layers], "os": "",
           "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
           "config": {}}
    return json.dumps(doc, separators=(",", ":")).encode()


def existing_layers(manifest: bytes | None) -> list[dict[str, Any]]:
    """The simple-signing layers of the manifest found under the `.sig` tag (none
    when there is none, or it is something else: then it is replaced)."""
    if manifest is None:
        return []
    try:
        doc = json.loads(manifest)
    except ValueError:
        return []
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, list):
        return []
    return [layer for layer in layers
            if isinstance(layer, dict) and layer.get("mediaType") == PAYLOAD_TYPE
            and isinstance(layer.get("digest"), str) and isinstance(layer.get("size"), int)]


def sig_manifest(layers: list[dict[str, Any]], config: bytes) -> bytes:
    """The manifest tagged `sha256-<hex>.sig`: an image of the signature layers."""
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": descriptor(OCI_CONFIG, config), "layers": layers}
    return json.dumps(doc, separators=(",", ":")).encode()


def referrer_manifest(layer: dict[str, Any], config: bytes,
                      subject: dict[str, Any]) -> bytes:
    """The OCI 1.1 referrer of the signed manifest (`subject`) holding one signature,
    as cosign's OCI 1.1 mode writes it: the image config typed as the artifact."""
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
           "config": descriptor(ARTIFACT_TYPE, config), "layers": [layer],
           "subject": subject}
    return json.dumps(doc, separators=(",", ":")).encode()
