"""Scan one stored manifest: its layers, in order, through core's blob service.

Each layer is read from `Blobs.reader` on the event loop and inflated and parsed
in a worker thread (`rootfs.Rootfs`), so the loop keeps serving; a layer's bytes
pass once and are never all held. An index is scanned as its child manifests are
(each push of a child is scanned on its own); its result lists them. A Spack
build's config carries its spec document, whose root is a package of the result
as well as what its tarball's `.spack/spec.json` says.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from registry.core.grammar import Digest
from registry.core.manifest_format import Descriptor, Manifest, parse_manifest
from registry.core.service import Registry
from registry.scan.decompress import Inflated
from registry.scan.inventory import Package, Result, ScanError
from registry.scan.langdb import spack_root
from registry.scan.limits import LayerError, Limits
from registry.scan.purl import purl
from registry.scan.rootfs import Rootfs
from registry.scan.source import LoopReader
from registry.scan.tarstream import TarReader


def is_tar_layer(layer: Descriptor) -> bool:
    """A filesystem layer (tar, compressed or not), as opposed to an artifact's blob
    (a signature, an SBOM, a chart): the media type says which to open, the magic
    bytes how."""
    mt = layer.media_type
    return mt.startswith(("application/vnd.oci.image.layer.",
                          "application/vnd.docker.image.rootfs.")) \
        or mt.split("+")[0].endswith((".tar", "/x-tar", "/tar"))


def _read_layer(reader: LoopReader, rootfs: Rootfs, layer: Descriptor,
                limits: Limits) -> dict[str, Any]:
    info: dict[str, Any] = {"digest": str(layer.digest), "size": layer.size}
    try:
        inflated = Inflated(reader, limits.inflated(layer.size))
    except LayerError as exc:
        rootfs.error(str(exc), str(layer.digest))
        return info
    tar = TarReader(inflated, limits)
    rootfs.layer(tar, str(layer.digest))
    info.update(compression=inflated.compression, inflated=inflated.size, entries=tar.count)
    return info


async def scan(registry: Registry, repo: str, digest: Digest,
               limits: Limits | None = None, scratch: str | None = None) -> Result:
    """What the manifest `digest` of `repo` holds. Errors of its layers are in the
    result; a manifest that cannot be read at all raises (core's errors)."""
    limits = limits or Limits()
    stored = await registry.manifests.get(repo, str(digest))
    manifest = parse_manifest(stored.data or b"", stored.media_type)
    result = Result()
    if manifest.is_index:
        result.layers = [{"manifest": str(m.digest), "platform": m.platform}
                         for m in manifest.manifests]
        return result
    rootfs = Rootfs(limits, scratch)
    loop = asyncio.get_running_loop()
    layers = [d for d in manifest.layers if is_tar_layer(d)]
    if len(layers) > limits.layers:
        rootfs.error(f"{len(layers)} layers: only the first {limits.layers} are read")
    for layer in layers[:limits.layers]:
        stop = threading.Event()
        reader = LoopReader(registry.blobs.reader(layer.digest), loop, stop)
        try:
            result.layers.append(await asyncio.to_thread(
                _read_layer, reader, rootfs, layer, limits))
        except asyncio.CancelledError:
            stop.set()  # the thread stops at its next read
            raise
        finally:
            await reader.close()
    packages = rootfs.packages
    spec = await _spack_spec(registry, manifest, repo)
    if isinstance(spec, ScanError):
        rootfs.errors.append(spec)
    elif spec is not None and not any(
            (p.ecosystem, p.name, p.version, p.extra.get("hash")) ==
            (spec.ecosystem, spec.name, spec.version, spec.extra.get("hash"))
            for p in packages):  # the tarball's own .spack/spec.json said it already
        packages.append(spec)
    distro = rootfs.distro()
    for p in packages:
        p.purl = purl(p, distro)
    result.packages, result.findings = packages, rootfs.findings
    result.errors, result.distro = rootfs.errors, distro
    return result


async def _spack_spec(registry: Registry, manifest: Manifest,
                      repo: str) -> Package | ScanError | None:
    """The root package of the spec document a Spack build's config carries."""
    config = manifest.config
    raw = await registry.manifests.read_config(manifest, repo)
    if raw is None or config is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "spec" not in doc:
        return None
    try:
        p = spack_root(doc)
    except ValueError as exc:
        return ScanError(f"spack spec not read: {exc}", "config", str(config.digest))
    p.layer, p.path = str(config.digest), "(spec document)"
    return p
