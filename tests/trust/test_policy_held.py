"""Quarantine through core's services (memory driver): a held tag is released by the
sweep when the signature came another way (another worker, a replica, before a
restart), and only the newest held push of a tag moves it."""

from __future__ import annotations

import pytest
from pushing import store_blob, store_image
from signers import cosign_sign, ec_key, pem

from registry.config import TrustConfig
from registry.core.areas import TrustArea
from registry.core.errors import ManifestUnknown
from registry.core.factory import build_registry
from registry.storage.memory import MemoryDriver
from registry.trust.checks import load_public_key
from registry.trust.verify import TrustMaterial, Verifier
from registry.trust.wiring import Trust

KEY = ec_key()


async def _material() -> TrustMaterial:
    return TrustMaterial((load_public_key(pem(KEY), "site"),))


async def sign_below(reg, repo: str, digest) -> None:
    """A signature stored without passing this process's policy decorators."""
    doc = cosign_sign(KEY, f"r/{repo}", str(digest))
    for blob in doc.blobs:
        await store_blob(reg, repo, blob)
    await reg.manifests.put(repo, doc.tag, doc.manifest,
                            "application/vnd.oci.image.manifest.v1+json")


async def test_sweep_releases_and_the_newest_push_wins(no_blocking):
    driver = MemoryDriver()
    reg = build_registry(driver)
    trust = Trust(TrustConfig(policies=["hpc/* require=site quarantine"]),
                  TrustArea(driver), Verifier(_material).judge)
    guarded = trust.decorate(reg)
    first, _ = await store_image(guarded, "hpc/app", "v1", "1")
    with pytest.raises(ManifestUnknown):  # held: the tag was never set
        await guarded.tags.resolve("hpc/app", "v1")
    await sign_below(reg, "hpc/app", first)
    assert await trust.held.sweep() == 1
    assert await guarded.tags.resolve("hpc/app", "v1") == first
    # Two held pushes of v1: the older one verifying later does not move the tag.
    older, _ = await store_image(guarded, "hpc/app", "v1", "2")
    newer, _ = await store_image(guarded, "hpc/app", "v1", "3")
    await sign_below(reg, "hpc/app", older)
    assert await trust.held.sweep() == 0
    assert await guarded.tags.resolve("hpc/app", "v1") == first
    await sign_below(reg, "hpc/app", newer)
    assert await trust.held.sweep() == 1
    assert await guarded.tags.resolve("hpc/app", "v1") == newer
    assert [f async for f in trust.held.area.walk()] == []
