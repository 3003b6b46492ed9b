"""The registry's domain services, as one object the handlers are given."""

from __future__ import annotations

from dataclasses import dataclass

from registry.core.mounts import Mounts
from registry.core.protocols import (
    Blobs,
    Catalog,
    Manifests,
    Objects,
    Referrers,
    Tags,
    Uploads,
)


@dataclass
class Registry:
    """Every core service, each typed by its Protocol (see core.protocols), built by
    `core.factory.build_registry`. Decorators replace fields with wrappers. No
    driver: whoever holds a Registry reaches storage through these services."""

    blobs: Blobs
    uploads: Uploads
    manifests: Manifests
    tags: Tags
    referrers: Referrers
    catalog: Catalog
    # The S3-compatible API's buckets and objects.
    objects: Objects
    # The one way to link a blob into a repository (the mount rule, core/mounts.py).
    mounts: Mounts
