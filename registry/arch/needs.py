"""What a node must offer to run a manifest (`GET /api/v1/requirements/...` and
`registry requirements REF`): for an image manifest, its own requirements; for an index,
each child's, and one Slurm constraint any of them satisfies.

An image manifest's needs come from the index's `builds` row (index/builds.py, written
off the request path) when there is one, else they are described now through core
(the resolver's `described`: its annotations and config), so the answer is right on any
store, before the index caught up or without one. An index's children are always
described from their own manifest and config with the platform the index gives them
(the resolver keeps those descriptions, content-addressed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from registry.arch.describe import Build
from registry.arch.platforms import PlatformError
from registry.arch.requirements import Need, slurm_alternatives
from registry.arch.resolver import Resolver
from registry.core.grammar import Digest
from registry.core.manifest_format import INDEX_TYPES, Descriptor
from registry.index.records import BuildRow

# The index's rows of one manifest: core.builds.Builds.of_manifest(repo, digest).
BuildRows = Callable[[str, Digest], Awaitable[list[BuildRow]]]


@dataclass(frozen=True)
class ManifestNeed:
    """One manifest's needs (`need`), or why they cannot be told (`error`)."""

    digest: str
    media_type: str
    platform: dict[str, Any]
    need: Need | None
    error: str | None = None
    source: str = "described"  # "index": the index's row; "described": read now

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "mediaType": self.media_type,
                               "platform": self.platform, "source": self.source}
        if self.need is not None:
            out.update(self.need.to_json())
        else:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Requirements:
    """The answer for one reference: the manifest it names and each build's needs."""

    repository: str
    digest: str
    media_type: str
    manifests: tuple[ManifestNeed, ...]

    @property
    def slurm_constraint(self) -> str:
        return slurm_alternatives(m.need for m in self.manifests if m.need is not None)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.repository, "digest": self.digest, "mediaType": self.media_type,
                "manifests": [m.to_json() for m in self.manifests],
                "slurm": {"constraint": self.slurm_constraint}}


def _platform(need: Need) -> dict[str, Any]:
    out = {"os": need.os, "architecture": need.architecture}
    if need.variant:
        out["variant"] = need.variant
    return out


class RequirementsService:
    """Answers what a reference needs of a node, through core (via `resolver`) and the
    index's rows (`rows`, None when there is no index)."""

    def __init__(self, resolver: Resolver, rows: BuildRows | None = None) -> None:
        self.resolver = resolver
        self.rows = rows

    async def of(self, repo: str, reference: str) -> Requirements:
        """Raises core's NameUnknown/ManifestUnknown when the reference names nothing."""
        stored = await self.resolver.registry.manifests.get(repo, reference, with_body=False)
        digest = str(stored.digest)
        if stored.media_type not in INDEX_TYPES and self.rows is not None:
            indexed = await self._indexed(repo, stored.digest, stored.media_type)
            if indexed is not None:
                return Requirements(repo, digest, stored.media_type, (indexed,))
        offered, looked = await self.resolver.described(repo, stored)
        out = []
        for i, desc in enumerate(offered):
            found = looked[i] if i < len(looked) else "not examined: too many manifests"
            out.append(_described(desc, found))
        return Requirements(repo, digest, stored.media_type, tuple(out))

    async def _indexed(self, repo: str, name: Digest, media_type: str) -> ManifestNeed | None:
        assert self.rows is not None
        digest = str(name)
        own = [r for r in await self.rows(repo, name) if r.declared_by == digest]
        if not own:
            return None  # not indexed (yet): described instead
        row = own[0]
        if row.error is not None:
            return ManifestNeed(digest, media_type, {}, None,
                                f"cannot tell what it needs: {row.error}", "index")
        try:
            need = Need.from_columns(row)
        except PlatformError:
            return None  # a row this version cannot read: describe it instead
        return ManifestNeed(digest, media_type, _platform(need), need, None, "index")


def _described(desc: Descriptor, found: Build | str) -> ManifestNeed:
    if isinstance(found, Build):
        need = Need.from_build(found)
        return ManifestNeed(str(desc.digest), desc.media_type, _platform(need), need)
    platform = {k: v for k, v in (desc.platform or {}).items()
                if k in ("os", "architecture", "variant") and isinstance(v, str)
                and len(v) <= 64}
    return ManifestNeed(str(desc.digest), desc.media_type, platform, None, found)
