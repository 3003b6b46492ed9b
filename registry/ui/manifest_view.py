"""What the repository and manifest pages show of one manifest: its kind, its builds
(platform and archspec target, per child for an index), its size, how often it was
pulled, its signature and scan state, and its referrers. Read through core and the
rooms' services on the context (the index's rows where they are kept), never from
storage; a view of the dashboard does not count as a pull (bodies are read by digest,
not through `manifests.get`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from registry.api.common import Context
from registry.arch.needs import ManifestNeed
from registry.core.errors import RegistryError
from registry.core.grammar import Digest
from registry.core.manifest_format import Manifest, parse_manifest
from registry.trust.checks import UNSIGNED

MAX_CHILDREN = 64  # children of one index described on a page
MAX_REFERRERS = 200  # referrers listed for one manifest
# Config media types of runnable images (anything else is an artifact).
IMAGE_CONFIGS = frozenset({"application/vnd.oci.image.config.v1+json",
                           "application/vnd.docker.container.image.v1+json"})


@dataclass(frozen=True, slots=True)
class Build:
    """One build of a manifest: an image's own, or an index's child's."""

    digest: str
    platform: str  # "linux/amd64/v3"; "" when nothing says
    target: str  # the archspec target it needs; "" when none is recorded
    size: int | None  # config + layers; None when the child is not in the repository
    error: str = ""


@dataclass(slots=True)
class Summary:
    """One manifest as the repository page lists it."""

    digest: str
    media_type: str
    kind: str  # "image", "index" or "artifact"
    artifact_type: str
    size: int  # config + layers; for an index, its children's together
    builds: list[Build] = field(default_factory=list)
    pulls: int | None = None  # None: no index counts pulls here
    signature: str = "unknown"  # "valid", "invalid", "unsigned", "unknown"
    signatures: list[dict[str, Any]] = field(default_factory=list)
    scan: dict[str, Any] | None = None  # Search.summary's answer
    referrers: list[dict[str, Any]] = field(default_factory=list)
    more_children: int = 0  # children not described (over MAX_CHILDREN)
    # What each build needs of a host (registry.arch.needs' JSON), for the manifest page.
    needs: list[dict[str, Any]] = field(default_factory=list)
    manifest: Manifest | None = None  # the parsed body


def kind_of(manifest: Manifest) -> str:
    """"index", "image" (a runnable image: an image config and no artifactType), or
    "artifact" (an SBOM, a signature, a Spack-free document...)."""
    if manifest.is_index:
        return "index"
    config = manifest.config.media_type if manifest.config is not None else ""
    if manifest.artifact_type is None and config in IMAGE_CONFIGS:
        return "image"
    return "artifact"


def image_size(manifest: Manifest) -> int:
    """Bytes of an image's config and layers (what a pull moves)."""
    return sum(d.size for d in manifest.blobs)


async def load(ctx: Context, repo: str, digest: Digest) -> tuple[str, Manifest]:
    """The media type and parsed body of `repo@digest` (ManifestUnknown: not there)."""
    stored = await ctx.registry.manifests.get(repo, str(digest), with_body=False)
    data = await ctx.registry.manifests.read_bytes(stored.digest)
    return stored.media_type, parse_manifest(data, stored.media_type)


def platform_text(platform: dict[str, Any] | None) -> str:
    """`os/architecture/variant` of a descriptor's or a requirement's platform."""
    if not platform:
        return ""
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if isinstance(p, str) and p)


async def needs(ctx: Context, repo: str, digest: Digest) -> list[ManifestNeed]:
    """What the image, or each child of an index, needs of a host: platform, archspec
    target, CUDA, MPI..., or why that cannot be told (registry.arch.needs)."""
    if ctx.requirements is None:
        return []
    try:
        answer = await ctx.requirements.of(repo, str(digest))
    except RegistryError:  # e.g. an index naming children that are not here
        return []
    return list(answer.manifests)


async def builds(ctx: Context, repo: str, digest: Digest, manifest: Manifest,
                 found: list[ManifestNeed]) -> tuple[list[Build], int]:
    """The builds of an image (one) or an index (each child, up to MAX_CHILDREN),
    with sizes, platforms and targets (from `found`); and how many children were
    left out."""
    by_digest = {m.digest: (platform_text(m.platform),
                            (m.need.target if m.need is not None else "") or "",
                            m.error or "") for m in found}
    if not manifest.is_index:
        platform, target, error = by_digest.get(str(digest), ("", "", ""))
        return [Build(str(digest), platform, target, image_size(manifest), error)], 0
    out = []
    for child in manifest.manifests[:MAX_CHILDREN]:
        platform, target, error = by_digest.get(str(child.digest), ("", "", ""))
        out.append(Build(str(child.digest), platform or platform_text(child.platform),
                         target, await child_size(ctx, repo, child.digest), error))
    return out, max(0, len(manifest.manifests) - MAX_CHILDREN)


async def child_size(ctx: Context, repo: str, digest: Digest) -> int | None:
    """Config and layers of a child image in `repo`; None when it is not there or not
    an image (an index of indexes is shown, not summed)."""
    if not await ctx.registry.manifests.exists(repo, digest):
        return None
    with contextlib.suppress(RegistryError):
        _, child = await load(ctx, repo, digest)
        if not child.is_index:
            return image_size(child)
    return None


async def signature_state(ctx: Context, repo: str,
                          digest: Digest) -> tuple[str, list[dict[str, Any]]]:
    """"valid" (a signature a trusted key vouches for), "invalid" (signatures, none
    valid), "unsigned", or "unknown" (no trust room here); and the signatures."""
    if ctx.signatures is None:
        return "unknown", []
    rows = await ctx.signatures.state(ctx.registry, repo, digest)
    shown = [{"format": r.format, "signature": r.signature, "identity": r.identity,
              "key": r.key, "valid": r.valid, "reason": r.reason, "detail": r.detail}
             for r in rows if r.reason != UNSIGNED]
    if not shown:
        return "unsigned", []
    return ("valid" if any(s["valid"] for s in shown) else "invalid"), shown


async def referrers(ctx: Context, repo: str, digest: Digest) -> list[dict[str, Any]]:
    """The manifests in `repo` whose subject is `digest`: digest, artifact type, size,
    annotations (as the referrers API lists them), by artifact type."""
    found = await ctx.registry.referrers.list(repo, digest)
    out: list[dict[str, Any]] = [{"digest": str(d.get("digest", "")),
            "artifactType": str(d.get("artifactType") or d.get("mediaType") or ""),
            "size": d.get("size") if isinstance(d.get("size"), int) else None,
            "annotations": d.get("annotations") if isinstance(d.get("annotations"), dict)
            else {}} for d in found[:MAX_REFERRERS]]
    return sorted(out, key=lambda r: (r["artifactType"], r["digest"]))


async def summarize(ctx: Context, repo: str, digest: Digest) -> Summary:
    """Everything the repository page shows of `repo@digest`."""
    media_type, manifest = await load(ctx, repo, digest)
    kind = kind_of(manifest)
    found = await needs(ctx, repo, digest) if kind != "artifact" else []
    built, more = (await builds(ctx, repo, digest, manifest, found) if kind != "artifact"
                   else ([], 0))
    size = (sum(b.size or 0 for b in built) if manifest.is_index
            else image_size(manifest))
    out = Summary(str(digest), media_type, kind,
                  manifest.effective_artifact_type or "" if kind == "artifact" else "",
                  size, built, more_children=more, manifest=manifest,
                  needs=[m.to_json() for m in found])
    if ctx.search is not None:
        out.pulls = await ctx.search.pulls(repo, str(digest))
        out.scan = await ctx.search.summary(repo, str(digest))
    out.signature, out.signatures = await signature_state(ctx, repo, digest)
    out.referrers = await referrers(ctx, repo, digest)
    return out
