"""The policy on the S3-compatible path: a Spack build cache pushed or read over S3
keeps its blobs in the OCI repository of its cache (`<bucket>` or `<bucket>/<prefix>`,
docs/spack.md), so an object that names a blob is served only as that repository's
blob would be (guard.py): a blob of a policy-covered repository that no servable
manifest references is refused with S3's AccessDenied (404 NoSuchKey under
`quarantine` alone). Objects that are no blob (spec documents, plain files) and
buckets that are no covered repository are served as they are.
"""

from __future__ import annotations

from registry.core.decorators import ObjectsDecorator
from registry.core.errors import BlobUnknown, ObjectError
from registry.core.protocols import Objects
from registry.core.types import ObjectPlan
from registry.trust.guard import PolicyGuard
from registry.trust.policy import Policy

MAX_DEPTH = 16  # a cache's prefix has at most this many segments


def candidates(bucket: str, key: str) -> list[str]:
    """The repositories an object of `bucket` may belong to: the bucket, then the
    bucket with each leading run of the key's segments (shortest first)."""
    segments = key.split("/")[:-1][:MAX_DEPTH]
    return [bucket] + ["/".join([bucket, *segments[:n]]) for n in range(1, len(segments) + 1)]


class PolicyObjects(ObjectsDecorator):
    """Objects whose bytes are a covered repository's blob pass the blob guard."""

    def __init__(self, inner: Objects, guard: PolicyGuard) -> None:
        super().__init__(inner)
        self.guard = guard

    async def _covering(self, bucket: str, key: str) -> tuple[str, Policy] | None:
        services = self.guard.services
        assert services is not None
        for repo in candidates(bucket, key):
            policy = self.guard.guarding(repo)
            if policy is not None and await services.catalog.exists(repo):
                return repo, policy
        return None

    async def serve(self, bucket: str, key: str, range_header: str | None = None,
                    with_body: bool = True, if_match: str | None = None,
                    if_none_match: str | None = None) -> ObjectPlan:
        if with_body and self.guard.policies.rules:
            covering = await self._covering(bucket, key)
            if covering is not None:
                info = await self.inner.head(bucket, key)
                if info.blob is not None:
                    repo, policy = covering
                    refused = await self.guard.blob_refusal(repo, info.blob, policy)
                    if isinstance(refused, BlobUnknown):
                        raise ObjectError("NoSuchKey", "the specified key does not exist", 404)
                    if refused is not None:
                        raise ObjectError("AccessDenied", refused.message, 403)
        return await self.inner.serve(bucket, key, range_header, with_body, if_match,
                                      if_none_match)
