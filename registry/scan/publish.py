"""A scan result published as two OCI 1.1 referrers of the scanned manifest, in the
repository it was scanned in: the SBOM (SPDX 2.3 JSON, registry/scan/sbom.py) and
the report (the stored result as it was written), each an artifact manifest with
the empty config, one layer, and `subject` = the scanned manifest.

They are written as the trust room writes signatures (registry/trust/signer.py):
blobs by `Blobs.put_small` and `Mounts.arrived` (the registry made their bytes),
manifests by `Manifests.put`, through the request path's services, so hooks, the
index and caches see them as a client's push. A re-scan publishes new ones, then
deletes the older referrers of these two types of that manifest: there is one of
each per manifest, the newest, and never none between the two steps.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from registry.core.access import CALLER, OPERATOR
from registry.core.errors import ManifestUnknown
from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest
from registry.core.service import Registry
from registry.scan import sbom
from registry.scan.scanner import is_tar_layer

log = logging.getLogger("registry.scan")

REPORT_TYPE = "application/vnd.io.github.registry.scan.report.v1+json"
SBOM_TYPE = sbom.MEDIA_TYPE
OURS = frozenset({REPORT_TYPE, SBOM_TYPE})
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


def is_ours(manifest: Manifest) -> bool:
    """An SBOM or a report (ours or anyone's SPDX): not scanned, nothing published
    for it (a scan of it would publish referrers of referrers, for ever)."""
    return manifest.effective_artifact_type in OURS


def wants_referrers(manifest: Manifest) -> bool:
    """An image: not an index (its children have their own), not itself attached to
    another manifest (a signature, an attestation), not ours, with a filesystem layer
    (an artifact of other blobs has no packages to list)."""
    return (not manifest.is_index and manifest.subject is None and not is_ours(manifest)
            and any(is_tar_layer(layer) for layer in manifest.layers))


def _artifact(artifact_type: str, blob: bytes, subject: dict[str, Any],
              created: str) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": str(Digest.of(EMPTY)),
                   "size": len(EMPTY), "data": "e30="},
        "layers": [{"mediaType": artifact_type, "digest": str(Digest.of(blob)),
                    "size": len(blob)}],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": created},
    }, separators=(",", ":")).encode()


async def _blob(registry: Registry, repo: str, data: bytes) -> None:
    digest = Digest.of(data)
    await registry.blobs.put_small(data, digest)
    await registry.mounts.arrived(repo, digest, len(data))  # the registry made it


async def publish(registry: Registry, repo: str, digest: Digest,
                  result: dict[str, Any]) -> list[Digest]:
    """Write the SBOM and report referrers of `digest` in `repo` from `result`, and
    delete the older ones; the digests written. ManifestUnknown when `digest` is
    gone."""
    acting = CALLER.set(OPERATOR)  # the registry writes them, whoever pushed
    try:
        target = await registry.manifests.get(repo, str(digest), with_body=False)
        subject = {"mediaType": target.media_type, "size": target.size,
                   "digest": str(digest)}
        spdx = sbom.document(result, repo)
        created = spdx["creationInfo"]["created"]
        report = json.dumps(result, sort_keys=True, separators=(",", ":")).encode()
        await _blob(registry, repo, EMPTY)
        made = []
        for artifact_type, blob in ((SBOM_TYPE, sbom.encode(spdx)), (REPORT_TYPE, report)):
            await _blob(registry, repo, blob)
            manifest = _artifact(artifact_type, blob, subject, created)
            put, _ = await registry.manifests.put(repo, str(Digest.of(manifest)), manifest,
                                                  OCI_MANIFEST)
            made.append(put)
        keep = {str(d) for d in made}
        for old in await registry.referrers.list(repo, digest):
            if old.get("artifactType") in OURS and str(old.get("digest")) not in keep:
                try:
                    await registry.manifests.delete(repo, str(old["digest"]))
                except ManifestUnknown:
                    pass  # deleted meanwhile
        return made
    finally:
        CALLER.reset(acting)
