"""What manifests need of a host, and where a blob is used, read off the index: what
`GET /api/v1/blobs/<digest>` answers, and the read other views of a manifest's builds
(the requirements API) go through. The rows are filled by the describer the index is
given (index/builds.py); `registry reindex` and the catch-up fill them from storage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from registry.core.grammar import Digest, validate_name
from registry.index.db import Index
from registry.index.records import BlobReport, BuildRow

MAX_REPOSITORIES = 1000  # repositories looked at for one blob (the empty layer is in all)
MAX_MANIFESTS = 500  # manifests reported for one blob


class Builds:
    """Reads of the index's build rows for the API: per manifest, and per blob within
    the repositories the caller may pull."""

    def __init__(self, index: Index) -> None:
        self.index = index

    async def of_manifest(self, repo: str, digest: Digest) -> list[BuildRow]:
        """What `repo@digest` needs of a host: the row from its own config first, then
        one per platform an index listing it declares; [] if none was recorded (an
        artifact, or not indexed yet). A row with `error` could not be described."""
        validate_name(repo)
        return await self.index.builds(repo, str(digest))

    async def blob(self, digest: Digest, may_pull: Callable[[str], bool]) -> BlobReport | None:
        """Where `digest` is used in the repositories `may_pull` admits; None when it
        is in none of them (unknown, or only where the caller may not look)."""
        repos = [r for r in await self.index.blob_repositories(str(digest)) if may_pull(r)]
        if not repos:
            return None
        return await self.index.blob_report(str(digest), repos[:MAX_REPOSITORIES],
                                            MAX_MANIFESTS)


def build_json(row: BuildRow) -> dict[str, Any]:
    """A build row as the API shows it (without the repository and digest it is of)."""
    out = asdict(row)
    for key in ("repo", "digest"):
        out.pop(key)
    if row.error is not None:  # described as nothing but the error
        return {k: out[k] for k in ("declared_by", "source", "error")}
    out.pop("error")
    out.pop("entry")
    return out


def report_json(report: BlobReport) -> dict[str, Any]:
    """`GET /api/v1/blobs/<digest>`'s body (docs/architecture-aware.md)."""
    repos = sorted(set(report.linked_in) | {m.repo for m in report.manifests})
    return {
        "digest": report.digest,
        "size": report.size,
        "repositories": repos,
        "manifests": [{
            "repository": m.repo, "digest": m.digest, "mediaType": m.media_type,
            "tags": m.tags,
            "indexes": [{"digest": d, "tags": t} for d, t in sorted(m.indexes.items())],
            "platforms": [build_json(b) for b in m.builds],
        } for m in report.manifests],
        "truncated": report.truncated,
        "architectures": [asdict(p) for p in report.platforms],
    }
