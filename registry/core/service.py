"""The registry's domain services wired together over one storage driver."""

from __future__ import annotations

from dataclasses import dataclass

from registry.core.blobs import BlobStore
from registry.core.cache import Generations
from registry.core.catalog import CatalogService
from registry.core.hooks import Hooks, NullHooks
from registry.core.manifests import ManifestService
from registry.core.referrers import ReferrersService
from registry.core.uploads import UploadService
from registry.storage.driver import Driver


@dataclass
class Registry:
    driver: Driver
    blobs: BlobStore
    uploads: UploadService
    manifests: ManifestService
    referrers: ReferrersService
    catalog: CatalogService

    @classmethod
    def create(cls, driver: Driver, hooks: Hooks | None = None, *, auto_mount: bool = True,
               manifest_max_bytes: int = 4 << 20, generations: Generations | None = None,
               shared_store: bool = False, tag_cache_seconds: float = 0.0) -> Registry:
        """Wire the services. `shared_store`: other machines write to the same store
        (s3 replicas), so in-memory caches cannot be invalidated exactly."""
        hooks = hooks or NullHooks()
        generations = generations or Generations()
        blobs = BlobStore(driver, hooks, generations, shared_store)
        return cls(
            driver=driver,
            blobs=blobs,
            uploads=UploadService(driver, blobs, auto_mount=auto_mount),
            manifests=ManifestService(driver, blobs, hooks, max_bytes=manifest_max_bytes,
                                      generations=generations, shared_store=shared_store,
                                      tag_ttl=tag_cache_seconds),
            referrers=ReferrersService(driver, generations, shared_store),
            catalog=CatalogService(driver),
        )
