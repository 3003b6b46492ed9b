"""The Spack build caches assembled: the shared state and the decorators that
put it between the handlers and the core services."""

from __future__ import annotations

import dataclasses

from registry.core.areas import SpackArea
from registry.core.object_keys import KeyClassifier
from registry.core.service import Registry
from registry.spack.catalog import SpecCatalog
from registry.spack.classic import SpackViews
from registry.spack.layout import key_class
from registry.spack.oci_bridge import SpackManifests
from registry.spack.s3_bridge import SpackObjects
from registry.spack.service import Signer, SpackCaches


class Spack:
    """`decorate` is a decorator for `core.factory.build_registry`: manifests
    and objects learn which pushes are spack specs, and `views` (the classic
    views, spack.classic) exist from then on; `caches` is what the views, the
    API and the CLI read; `catalog` (when given) is the SQLite index of
    every spec, kept by `caches`; `object_keys` goes into the factory's settings
    (core.factory.CoreSettings): which S3 keys the object service stores as blobs."""

    def __init__(self, area: SpackArea, catalog: SpecCatalog | None = None,
                 signer: Signer | None = None) -> None:
        self.catalog = catalog
        self.object_keys: KeyClassifier = key_class
        self.caches = SpackCaches(area, sink=catalog, signer=signer)
        if catalog is not None:
            catalog.states = self.caches
        self._objects: list[SpackObjects] = []
        self.views: SpackViews | None = None

    def decorate(self, reg: Registry) -> Registry:
        self.caches.blobs = reg.blobs
        self.caches.mounts = reg.mounts
        self.caches.uploads = reg.uploads
        manifests = SpackManifests(reg.manifests, reg.blobs, self.caches, reg.mounts)
        objects = SpackObjects(reg.objects, reg.blobs, self.caches, manifests, reg.mounts)
        self._objects.append(objects)
        self.views = SpackViews(self.caches, objects)
        return dataclasses.replace(reg, manifests=manifests, objects=objects)

    async def settle(self) -> None:
        """Wait for the OCI images the decorated object services are making in the
        background (a CLI import must not close the store under them)."""
        for objects in self._objects:
            await objects.settle()
