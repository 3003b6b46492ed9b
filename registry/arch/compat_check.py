"""Image-compatibility artifacts at push and at resolution: the artifact check core's
manifest service is handed (core/artifact_checks.py), and the resolver's seam
(arch/resolver.py `Compat`) answered from the index.

At push, a manifest whose artifactType (or config media type) is one of the two
image-compatibility types must carry exactly one spec layer of its format's media
type; the layer is read through core's blob service, bounded, and parsed
(arch/compat.py). A hostile or invalid spec refuses the push (MANIFEST_INVALID with
the reason) before anything is stored; a valid one is recorded in the index, as
canonical JSON, for the manifest it refers to.
"""

from __future__ import annotations

from registry.arch.compat import SPEC_LAYERS, Stored, judge_current, parse
from registry.arch.compat_load import MAX_BYTES
from registry.arch.host import Host
from registry.arch.resolver import Compat
from registry.core.manifest_format import Descriptor, Manifest
from registry.index.db import Index


class CompatCheck:
    """core.artifact_checks.ArtifactCheck for image-compatibility artifacts."""

    max_bytes = MAX_BYTES

    def document(self, manifest: Manifest) -> Descriptor | None:
        kind = manifest.effective_artifact_type
        if kind not in SPEC_LAYERS or manifest.is_index:
            return None
        specs = [d for d in manifest.layers if d.media_type == SPEC_LAYERS[kind]]
        if len(specs) != 1:
            raise ValueError(f"an {kind} artifact must have exactly one "
                             f"{SPEC_LAYERS[kind]} layer, it has {len(specs)}")
        return specs[0]

    def check(self, manifest: Manifest, data: bytes) -> str:
        # CompatError is a ValueError: core refuses the push with its message.
        return parse(manifest.effective_artifact_type or "", data).to_json()


def index_compat(index: Index) -> Compat:
    """The resolver's `Compat` seam answered from the index: the image-compatibility
    artifacts recorded for a build (the newest of each type) must hold on the host."""

    async def compat(repo: str, digest: str, host: Host) -> tuple[bool, str] | None:
        rows = [r for r in await index.artifacts(repo, digest)
                if r.artifact_type in SPEC_LAYERS]
        if not rows:
            return None
        verdict = judge_current((Stored(r.digest, r.artifact_type, r.created, r.pushed_at,
                                        r.document) for r in rows), host)
        return verdict.fits, verdict.reason

    return compat
