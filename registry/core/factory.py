"""One factory builds the core services from settings, and applies decorators.

A decorator is a function `Registry -> Registry` that swaps services for wrappers
implementing the same Protocols (a node cache around blobs and manifests, a
policy guard, a quota). They are applied in order, so the last is outermost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.config import Config
from registry.core.artifact_checks import NO_ARTIFACT_CHECKS, ArtifactCheck
from registry.core.blobs import BlobStore
from registry.core.cache import Generations
from registry.core.catalog import CatalogService
from registry.core.hooks import Hooks, NullHooks
from registry.core.manifests import ManifestService
from registry.core.mounts import Holders, Mounts
from registry.core.object_keys import KeyClassifier, plain_keys
from registry.core.object_service import ObjectService
from registry.core.referrers import ReferrersService
from registry.core.service import Registry
from registry.core.tags import TagStore
from registry.core.uploads import UploadService
from registry.storage.driver import Driver

Decorator = Callable[[Registry], Registry]
# Drivers whose store no other machine writes to: caches can be exact.
LOCAL_DRIVERS = ("filesystem", "memory")


@dataclass(frozen=True)
class CoreSettings:
    """What the core services need to know of the configuration."""

    auto_mount: bool = True
    manifest_max_bytes: int = 4 << 20
    # Other machines write to the same store (s3 replicas): in-memory caches of
    # mutable things cannot be invalidated exactly, so they are off or TTL-bound.
    shared_store: bool = False
    tag_cache_seconds: float = 0.0
    # Whether a garbage collection runs (core.gc.GcWatch); None: never asked.
    gc_watch: Any = None
    # Which S3 keys are content-addressed: injected by the room that gives keys a
    # meaning (registry.spack.wiring.Spack.object_keys); core knows no key shapes.
    object_keys: KeyClassifier = plain_keys
    # Which repositories link a blob, from the index: candidates for a mount.
    holders: Holders | None = None
    # The documents of artifacts a room understands, checked at push (injected by the
    # room: registry.arch.compat_check for image-compatibility artifacts).
    artifact_check: ArtifactCheck = NO_ARTIFACT_CHECKS

    @classmethod
    def from_config(cls, config: Config) -> CoreSettings:
        return cls(auto_mount=config.storage.auto_mount,
                   manifest_max_bytes=config.limits.manifest_max_bytes,
                   shared_store=config.storage.driver not in LOCAL_DRIVERS,
                   tag_cache_seconds=config.storage.tag_cache_ms / 1000)


def build_registry(driver: Driver, hooks: Hooks | None = None,
                   settings: CoreSettings | None = None,
                   generations: Generations | None = None,
                   decorators: Sequence[Decorator] = ()) -> Registry:
    """The services over `driver`, wired together, then wrapped by `decorators`.
    `generations` are the write counters shared by forked workers (core.cache)."""
    s = settings or CoreSettings()
    hooks = hooks or NullHooks()
    generations = generations or Generations()
    blobs = BlobStore(driver, hooks, generations, s.shared_store, s.gc_watch)
    tags = TagStore(driver, hooks, generations, s.shared_store, s.tag_cache_seconds)
    mounts = Mounts(blobs, s.holders, s.auto_mount)
    registry = Registry(
        blobs=blobs,
        uploads=UploadService(driver, blobs, mounts),
        manifests=ManifestService(driver, blobs, tags, hooks, max_bytes=s.manifest_max_bytes,
                                  generations=generations, shared_store=s.shared_store,
                                  artifact_check=s.artifact_check),
        tags=tags,
        referrers=ReferrersService(driver, generations, s.shared_store),
        catalog=CatalogService(driver),
        objects=ObjectService(driver, blobs, s.object_keys),
        mounts=mounts,
    )
    for decorate in decorators:
        registry = decorate(registry)
    return registry
