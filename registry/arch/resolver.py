"""Which manifest a tag (or digest) offers a host: the one resolver behind
`/api/v1/resolve`, the `Registry-Host` header and the rooms that answer for a host.

The manifest named is loaded through core's Protocols (never storage); an image manifest
is its own single candidate, an index offers each child it lists (at most MAX_CHILDREN).
Each child must be a manifest of the same repository; its annotations, its config (read
bounded, at most describe.MAX_CONFIG bytes) and the platform the index gives it are
described (`describe.describe`), judged and ranked against the host (`fit.rank`).

Compatibility artifacts: the `compat` callable (the seam for image-compatibility
referrers) is asked about every build that fits by its target, CUDA and MPI; it answers
None when the build has no such artifacts, else whether they hold on the host and why.
A build whose artifacts do not hold does not fit.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from registry.arch.describe import Build, candidate, describe
from registry.arch.fit import Verdict, rank
from registry.arch.host import Host, dotted
from registry.arch.platforms import PlatformError
from registry.core.errors import ManifestInvalid, ManifestUnknown, NameUnknown
from registry.core.grammar import Digest
from registry.core.manifest_format import INDEX_TYPES, Descriptor, Manifest, parse_manifest
from registry.core.offload import off_loop_if
from registry.core.service import Registry
from registry.core.types import StoredManifest

MAX_CHILDREN = 128  # children of one index examined; the rest are listed, unexamined
CONCURRENCY = 8  # children examined at once
PARSE_INLINE_MAX = 64 << 10  # larger manifests are parsed off the event loop
BUILDS_CACHED = 4096

# The seam for compatibility artifacts (referrers of a build): (repository, digest of a
# build that fits, host) -> None when the build has none, else (they hold, why).
Compat = Callable[[str, str, Host], Awaitable[tuple[bool, str] | None]]


@dataclass(frozen=True)
class Choice:
    """One build on offer and the verdict on it: fits (with a rank, 1 best) or not, why."""

    digest: str
    media_type: str
    size: int
    platform: dict[str, Any]
    build: Build | None
    fits: bool
    reason: str
    rank: int | None = None

    def to_json(self) -> dict[str, Any]:
        build = self.build
        out: dict[str, Any] = {"digest": self.digest, "mediaType": self.media_type,
                               "platform": self.platform,
                               "target": build.target if build else None,
                               "fits": self.fits, "reason": self.reason, "rank": self.rank}
        if build is not None:
            out.update({k: v for k, v in (
                ("cuda", dotted(build.cuda) if build.cuda else None),
                ("rocm", dotted(build.rocm) if build.rocm else None),
                ("mpi", str(build.mpi) if build.mpi else None)) if v is not None})
        return out


@dataclass(frozen=True)
class Resolution:
    """The answer for one host: the manifest the reference named, every candidate
    (fitting ones first, best first), and the chosen one (None when nothing fits)."""

    repository: str
    digest: str  # of the manifest the reference named (an index, or one image)
    media_type: str
    candidates: tuple[Choice, ...]

    @property
    def chosen(self) -> Choice | None:
        first = self.candidates[0] if self.candidates else None
        return first if first is not None and first.fits else None

    def to_json(self) -> dict[str, Any]:
        chosen = self.chosen
        return {"digest": chosen.digest if chosen else None, "index": self.digest,
                "candidates": [c.to_json() for c in self.candidates]}


class Resolver:
    """Resolves a repository's tag or digest for a host through the core services of
    `registry`; `compat` is the compatibility-artifact check (see the module doc)."""

    def __init__(self, registry: Registry, compat: Compat | None = None) -> None:
        self.registry = registry
        self.compat = compat
        # (child digest, its platform in the index) -> Build: content-addressed, never
        # stale (the config's digest is in the child's bytes).
        self._builds: OrderedDict[tuple[str, str], Build] = OrderedDict()

    async def resolve(self, repo: str, reference: str, host: Host) -> Resolution:
        """Resolve `reference` (a tag or digest) of `repo` for `host`. Raises core's
        NameUnknown/ManifestUnknown when the reference names nothing."""
        stored = await self.registry.manifests.get(repo, reference, with_body=False)
        return await self.resolve_stored(repo, stored, host)

    async def resolve_stored(self, repo: str, stored: StoredManifest,
                             host: Host) -> Resolution:
        """Resolve a manifest already looked up (the OCI path has it in hand)."""
        offered, looked = await self.described(repo, stored)
        choices = await self._judge(repo, offered, looked, host)
        return Resolution(repo, str(stored.digest), stored.media_type, tuple(choices))

    async def described(self, repo: str, stored: StoredManifest
                        ) -> tuple[list[Descriptor], list[Build | str]]:
        """What `stored` offers (an image: itself; an index: its children, in its order)
        and, for the first MAX_CHILDREN of them, what each needs of a host (its Build)
        or why that cannot be told (in words). The requirements API reads this too."""
        manifest = await self._parse(stored.digest, stored.media_type, stored.data)
        if manifest.media_type in INDEX_TYPES:
            offered = list(manifest.manifests)
        else:
            offered = [Descriptor(stored.media_type, stored.digest, stored.size)]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def examine(desc: Descriptor) -> Build | str:
            async with gate:
                return await self._examine(repo, desc, manifest if desc.digest ==
                                           stored.digest else None)

        looked = await asyncio.gather(*(examine(d) for d in offered[:MAX_CHILDREN]))
        return offered, list(looked)

    async def _judge(self, repo: str, offered: list[Descriptor], looked: list[Build | str],
                     host: Host) -> list[Choice]:
        described = {str(d.digest): (d, b) for d, b in zip(offered, looked, strict=False)
                     if isinstance(b, Build)}
        verdicts = rank((candidate(digest, b) for digest, (_, b) in described.items()), host)
        fitting: list[Choice] = []
        unfit: list[Choice] = []
        for verdict in verdicts:
            desc, build = described[verdict.candidate.digest]
            choice = _choice(desc, build, verdict)
            if choice.fits and self.compat is not None:
                said = await self.compat(repo, choice.digest, host)
                if said is not None:
                    holds, why = said
                    choice = replace(choice, fits=holds, reason=f"{choice.reason}; {why}",
                                     rank=choice.rank if holds else None)
            (fitting if choice.fits else unfit).append(choice)
        fitting = [replace(c, rank=n) for n, c in enumerate(fitting, 1)]
        for i, desc in enumerate(offered):  # those not described, in the index's order
            if i >= MAX_CHILDREN:
                why = f"not examined: the index lists more than {MAX_CHILDREN} manifests"
            elif isinstance(looked[i], Build):
                continue
            else:
                why = str(looked[i])
            unfit.append(Choice(str(desc.digest), desc.media_type, desc.size,
                                _given_platform(desc.platform), None, False, why))
        return fitting + unfit

    async def _parse(self, digest: Digest, media_type: str, data: bytes | None) -> Manifest:
        if data is None:
            data = await self.registry.manifests.read_bytes(digest)
        return await off_loop_if(len(data) > PARSE_INLINE_MAX, parse_manifest, data, media_type)

    async def _examine(self, repo: str, desc: Descriptor, parsed: Manifest | None) -> Build | str:
        """The child's Build, or why it cannot be one (in words)."""
        if desc.media_type in INDEX_TYPES:
            return "an index, not an image"
        key = (str(desc.digest), json.dumps(desc.platform, sort_keys=True))
        try:
            # In this repository? (core's revision look-up, cached; no pull is counted)
            child = await self.registry.manifests.get(repo, str(desc.digest), with_body=False)
            build = self._builds.get(key)
            if build is not None:
                self._builds.move_to_end(key)
                return build
            manifest = parsed or await self._parse(child.digest, child.media_type, None)
            if manifest.media_type in INDEX_TYPES:
                return "an index, not an image"
            config = await self.registry.manifests.read_config(manifest, repo)
            build = describe(annotations=manifest.annotations, config=config,
                             platform=desc.platform)
        except (ManifestUnknown, NameUnknown):
            return "not a manifest of this repository"
        except ManifestInvalid as exc:
            return f"not a valid manifest: {exc.message}"
        except PlatformError as exc:
            return f"cannot tell what it needs: {exc}"
        self._builds[key] = build
        if len(self._builds) > BUILDS_CACHED:
            self._builds.popitem(last=False)
        return build


def _choice(desc: Descriptor, build: Build, verdict: Verdict) -> Choice:
    platform = {"os": build.os, "architecture": build.architecture}
    if build.variant:
        platform["variant"] = build.variant
    if build.os_version:
        platform["os.version"] = build.os_version
    return Choice(str(desc.digest), desc.media_type, desc.size, platform, build,
                  verdict.fits, verdict.reason, verdict.rank)


def _given_platform(platform: dict[str, Any] | None) -> dict[str, Any]:
    # Echo only short strings of the keys we know: the index is the client's document.
    return {k: v for k, v in (platform or {}).items()
            if k in ("os", "architecture", "variant") and isinstance(v, str) and len(v) <= 64}
