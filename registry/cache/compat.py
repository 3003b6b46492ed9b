"""The resolver's compatibility seam (`arch.resolver.Compat`) on a node cache.

A registry answers it from its index, which records each image-compatibility artifact
when it is pushed (arch/compat_check.py). A node cache's index knows only what passed
through it, so it asks its upstream: the referrers of the build (`Referrers.list`,
the upstream's), each image-compatibility artifact among them read through the cache's
manifest and blob paths (fetched once, kept), checked as a push would check it
(`CompatCheck`, `arch.compat.parse`), and the newest of each type judged on the host
(`judge_current`). An artifact that cannot be read or is not a valid document is left
out and logged: a hostile document changes nothing.
"""

from __future__ import annotations

import logging

from registry.arch.compat import CREATED, SPEC_LAYERS, Stored, judge_current, parse
from registry.arch.compat_check import CompatCheck
from registry.arch.compat_load import MAX_BYTES
from registry.arch.host import Host
from registry.arch.resolver import Compat
from registry.cache.plans import read_small
from registry.core.errors import RegistryError, TooManyRequests, UpstreamUnavailable
from registry.core.grammar import Digest
from registry.core.manifest_format import parse_manifest
from registry.core.protocols import Blobs, Manifests, Referrers

log = logging.getLogger("registry.cache")

MAX_ARTIFACTS = 16  # image-compatibility referrers of one build read at most


def upstream_compat(referrers: Referrers, manifests: Manifests, blobs: Blobs) -> Compat:
    """`Compat` from the referrers `referrers` lists (a node cache's: the upstream's),
    their manifests and spec layers read through `manifests` and `blobs`."""
    check = CompatCheck()

    async def read(repo: str, desc: dict[str, object]) -> Stored | None:
        kind = desc.get("artifactType")
        digest = desc.get("digest")
        if kind not in SPEC_LAYERS or not isinstance(kind, str) or not isinstance(digest, str):
            return None
        try:
            stored = await manifests.get(repo, digest)
            manifest = parse_manifest(stored.data or b"", stored.media_type)
            layer = check.document(manifest)
            if layer is None or layer.size > MAX_BYTES:
                raise ValueError("no spec layer of a readable size")
            spec = parse(kind, await read_small(blobs, repo, layer.digest, MAX_BYTES))
        except (UpstreamUnavailable, TooManyRequests):
            raise  # unknown now: no verdict rather than a wrong one
        except (RegistryError, ValueError) as exc:  # CompatError is a ValueError
            log.warning("compatibility artifact %s of %s not used: %s", digest[:80], repo,
                        getattr(exc, "message", None) or exc)
            return None
        created = (manifest.annotations or {}).get(CREATED, "")
        return Stored(digest, kind, created, 0.0, spec.to_json())

    async def compat(repo: str, digest: str, host: Host) -> tuple[bool, str] | None:
        listed = await referrers.list(repo, Digest.parse(digest))
        found = [d for d in listed if d.get("artifactType") in SPEC_LAYERS][:MAX_ARTIFACTS]
        stored = [s for s in [await read(repo, d) for d in found] if s is not None]
        if not stored:
            return None
        verdict = judge_current(stored, host)
        return verdict.fits, verdict.reason

    return compat
