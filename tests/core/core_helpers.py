"""Helpers for the core tests: pushing through the services, counting store calls."""

from __future__ import annotations

import hashlib
import json

from registry.core.grammar import Digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def digest_of(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def push_blob(reg, repo: str, data: bytes) -> Digest:
    digest = digest_of(data)
    await reg.uploads.upload_whole(repo, digest, chunks(data), len(data))
    return digest


async def push_image(reg, repo: str, tag: str | None, note: str = "",
                     subject: dict | None = None) -> tuple[Digest, bytes]:
    """A small image (config + one layer) pushed by tag, or by digest if tag is None."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = b"layer " + note.encode()
    await push_blob(reg, repo, config)
    await push_blob(reg, repo, layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": OCI_CONFIG, "digest": str(digest_of(config)),
                      "size": len(config)},
           "layers": [{"mediaType": "application/octet-stream",
                       "digest": str(digest_of(layer)), "size": len(layer)}],
           "annotations": {"note": note}}
    if subject is not None:
        doc["subject"] = subject
    body = json.dumps(doc).encode()
    digest, _ = await reg.manifests.put(repo, tag or str(digest_of(body)), body, OCI_MANIFEST)
    return digest, body


def ops(driver) -> dict[str, int]:
    """Calls so far per store operation."""
    return {op: s["calls"] for op, s in driver.stats()["ops"].items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {op: after[op] - before[op] for op in after if after[op] != before[op]}


def gc_world():
    """A registry over the memory driver with a GC watch: (driver, watch,
    generations, registry)."""
    from registry.core.cache import Generations
    from registry.core.factory import CoreSettings, build_registry
    from registry.core.gc import GcWatch
    from registry.storage.memory import MemoryDriver

    driver = MemoryDriver()
    watch = GcWatch(driver)
    generations = Generations()
    reg = build_registry(driver, settings=CoreSettings(gc_watch=watch),
                         generations=generations)
    return driver, watch, generations, reg
