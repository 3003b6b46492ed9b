"""The OCI side of a Spack build cache, as a decorator of the manifest service.

- A manifest pushed under a spec tag (`<name>-<version>-<hash>.spack`) whose
  config carries a spack `spec` becomes a record of the cache (the journal
  entry is durable before the push is answered); a config that is not JSON, or
  whose spec is malformed or names another hash than its tag, is refused with
  MANIFEST_INVALID before anything is stored.
- `index.spack` is answered from the server-kept index. A client's own
  `update-index` may still push it: that is stored and changes nothing.
- Deleting a spec's tag (or its manifest) removes the spec from the index.
- A spec pushed as a classic cache through S3 gets its image made here (config
  and manifest over the same tarball blobs) when it is first asked for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from registry.core.access import NOBODY
from registry.core.decorators import ManifestsDecorator
from registry.core.errors import ManifestInvalid, ManifestUnknown
from registry.core.grammar import Digest, is_digest_like
from registry.core.manifest_format import Manifest, decode_json
from registry.core.mounts import Mounts
from registry.core.protocols import Blobs, Manifests
from registry.core.types import StoredManifest
from registry.spack import synth
from registry.spack.gunzip import GunzipHasher, NotGzip
from registry.spack.layout import INDEX_TAG, hash_of_tag, spec_tag, valid_cache
from registry.spack.service import SpackCaches
from registry.spack.specs import InvalidSpec, SpecDoc, SpecRecord

log = logging.getLogger("registry.spack")

CONFIG_MAX = 32 << 20
# In a record's `extra`: its pusher may not push the cache's repository over OCI
# (an S3 push with S3 rights only), so no image, and no tag, is made for it.
NO_IMAGE = "no_image"


def makes_image(record: SpecRecord) -> bool:
    """Whether a spec that arrived as a classic cache gets an OCI image (a tag)."""
    return not record.extra.get(NO_IMAGE)


class SpackManifests(ManifestsDecorator):
    """Manifests (core.protocols) of repositories that are Spack build caches."""

    def __init__(self, inner: Manifests, blobs: Blobs, caches: SpackCaches,
                 mounts: Mounts) -> None:
        super().__init__(inner)
        self.blobs = blobs
        self.mounts = mounts
        self.caches = caches
        self._making: dict[tuple[str, str], asyncio.Future] = {}

    # -- reads -------------------------------------------------------------------

    async def get(self, repo: str, reference: str, with_body: bool = True) -> StoredManifest:
        if reference == INDEX_TAG:
            data = await self.caches.oci_index(repo)
            if data is not None:
                return StoredManifest(Digest.of(data), synth.OCI_MANIFEST, len(data),
                                      data if with_body else None)
            return await self.inner.get(repo, reference, with_body)
        try:
            return await self.inner.get(repo, reference, with_body)
        except ManifestUnknown:
            h = None if is_digest_like(reference) else hash_of_tag(reference)
            if h is None:
                raise
            record = await self.caches.record(repo, h)
            if record is None or record.source == "oci" or not makes_image(record):
                raise
        try:
            await self.materialize(repo, record)
        except NotGzip as exc:  # installable from the classic views, not as an image
            raise ManifestUnknown(f"spec {record.hash} has no OCI image: its tarball is "
                                  f"not a usable gzip stream ({exc})") from None
        return await self.inner.get(repo, reference, with_body)

    # -- writes ------------------------------------------------------------------

    async def put(self, repo: str, reference: str, data: bytes,
                  content_type: str | None) -> tuple[Digest, Manifest]:
        h = None if is_digest_like(reference) else hash_of_tag(reference)
        if h is None or not valid_cache(repo):
            return await self.inner.put(repo, reference, data, content_type)
        spec, config = await self._spec_of(repo, data, h)
        digest, manifest = await self.inner.put(repo, reference, data, content_type)
        if spec is None:
            return digest, manifest
        record = await self._record(repo, spec, config, manifest, digest)
        if record is not None:
            await self.caches.add(repo, record)
        return digest, manifest

    async def delete(self, repo: str, reference: str) -> None:
        if is_digest_like(reference):
            digest = Digest.parse(reference)
            await self.inner.delete(repo, reference)
            for pushed in await self.caches.pushed_as(repo, digest):
                await self.caches.remove(repo, pushed)
            return
        await self.inner.delete(repo, reference)
        h = hash_of_tag(reference)
        if h is not None:
            await self.caches.remove(repo, h)

    async def delete_untagged(self, repo: str, digest: Digest,
                              named: Callable[[], Awaitable[bool]]) -> bool:
        if not await self.inner.delete_untagged(repo, digest, named):
            return False
        for pushed in await self.caches.pushed_as(repo, digest):
            await self.caches.remove(repo, pushed)
        return True

    async def _spec_of(self, repo: str, data: bytes,
                       h: str) -> tuple[SpecDoc | None, dict]:
        """The spec in the config of a manifest pushed under a spec tag; None when
        the config has no `spec` (an ordinary image that happens to be so named)."""
        try:
            doc = decode_json(data)
            config_digest = Digest.parse(doc["config"]["digest"])
        except (KeyError, TypeError, ValueError, ManifestInvalid):
            return None, {}  # the manifest service says what is wrong with it
        try:
            # Only a config the repository holds is read: the manifest service
            # refuses the others, as if they were nowhere (they may be another's).
            if not await self.blobs.linked(repo, config_digest):
                return None, {}
            raw = await self.blobs.read(config_digest, CONFIG_MAX)
        except Exception:
            return None, {}  # unknown blob: refused by the manifest service
        try:
            config = json.loads(raw)
        except ValueError:
            raise ManifestInvalid("the config of a spack spec image is not valid JSON",
                                  {"config": str(config_digest)}) from None
        if not isinstance(config, dict) or "spec" not in config:
            return None, {}
        try:
            spec = SpecDoc.parse(config)
        except InvalidSpec as exc:
            raise ManifestInvalid(f"the config's spack spec is invalid: {exc}",
                                  {"config": str(config_digest)}) from None
        if spec.root.hash != h:
            raise ManifestInvalid("the tag names another spec than the config's",
                                  {"tag_hash": h, "spec_hash": spec.root.hash})
        return spec, config

    async def _record(self, repo: str, spec: SpecDoc, config: dict, manifest: Manifest,
                      digest: Digest) -> SpecRecord | None:
        if not manifest.layers:
            raise ManifestInvalid("a spack spec image has no layers")
        tarball = manifest.layers[-1]
        checksum = config.get("binary_cache_checksum")
        if isinstance(checksum, dict) and isinstance(checksum.get("hash"), str):
            for layer in manifest.layers:  # the root's own layer, where it is
                if layer.digest.hex == checksum["hash"]:
                    tarball = layer
        if not await self.blobs.linked(repo, tarball.digest):
            # A non-distributable layer (with `urls`) the manifest service let pass:
            # not a tarball the cache holds, so not a spec of the cache.
            log.warning("spack: %s in %s names a tarball it does not hold", digest, repo)
            return None
        record = SpecRecord(spec, tarball.digest, tarball.size, "oci", oci=digest)
        spec_file = synth.spec_file_v3(record)
        spec_blob = await self.caches.store_blob(repo, spec_file)  # made here: linked
        return SpecRecord(spec, tarball.digest, tarball.size, "oci", spec_blob, len(spec_file),
                          oci=digest, pushed=time.time())

    # -- images for classic pushes --------------------------------------------

    async def materialize(self, repo: str, record: SpecRecord) -> None:
        """Push (once, however many ask at a time) the image of a spec that
        arrived as a classic cache: the same tarball blobs as layers, dependencies
        first when the cache holds them, the root's last."""
        key = (repo, record.hash)
        pending = self._making.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            return
        future = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            await self._materialize(repo, record)
            future.set_result(None)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            del self._making[key]

    async def _materialize(self, repo: str, record: SpecRecord) -> None:
        layers: list[tuple[Digest, int]] = []
        for node in record.spec.runtime_deps():
            dep = await self.caches.record(repo, node.hash)
            if dep is not None:
                layers.append((dep.tarball, dep.tarball_size))
        layers.append((record.tarball, record.tarball_size))
        diff_ids = [str(await self._uncompressed_digest(d, n)) for d, n in layers]
        config = synth.oci_config(record, diff_ids)
        config_digest = await self.caches.store_blob(repo, config)  # made here: linked
        # The layers are tarballs of the cache's records, linked into it when each
        # record was added (by the mount rule): nothing from elsewhere.
        for digest, _ in layers:
            await self.mounts.link(repo, digest, NOBODY)
        root = record.root
        data = synth.oci_manifest(config_digest, len(config), layers,
                                  f"{root.name}@{root.version} /{root.hash}")
        await self.inner.put(repo, spec_tag(root.name, root.version, root.hash), data,
                             synth.OCI_MANIFEST)

    async def _uncompressed_digest(self, digest: Digest, size: int) -> Digest:
        """The diff_id of a gzipped layer: the sha256 of its decompressed bytes,
        streamed (the tarball may be large)."""
        hasher = GunzipHasher(size)
        async for chunk in self.blobs.reader(digest):
            await asyncio.to_thread(hasher.update, chunk)
        return Digest("sha256", hasher.hexdigest())
