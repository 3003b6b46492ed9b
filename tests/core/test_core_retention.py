"""Retention of untagged manifests at the core: what a rule lets go, what it must
keep whatever the rule says, and a tag pushed while the collection deletes."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from core_helpers import gc_world
from pushing import OCI_MANIFEST, core_digest, store_image

from registry.core.errors import ManifestUnknown
from registry.core.gc import collect
from registry.core.retention import RetentionRule, retention_rules
from registry.storage.memory import MemoryDriver

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DAY = 86400.0




def age(driver: MemoryDriver, digest, days: float) -> None:
    """Make every link to `digest` look pushed `days` ago."""
    files = driver.store.files
    for path, (data, _) in list(files.items()):
        if "/_manifests/revisions/" in path and path.endswith(digest.hex):
            files[path] = (data, time.time() - days * DAY)


async def image(reg, driver, repo: str, note: str, days: float, tag: str | None = None):
    digest, body = await store_image(reg, repo, tag, note=note)
    age(driver, digest, days)
    return digest, body


async def present(reg, repo: str, digest) -> bool:
    try:
        await reg.manifests.get(repo, str(digest))
        return True
    except ManifestUnknown:
        return False


def test_rules_parse_and_refuse():
    assert RetentionRule.parse("ci/* keep=10 days=7") == RetentionRule("ci/*", 10, 7.0)
    assert RetentionRule.parse("x days=0.5").days == 0.5
    for bad in ["ci/*", "ci/* keep=", "ci/* keep=1.5", "ci/* forever", "keep=3"]:
        with pytest.raises(ValueError):
            RetentionRule.parse(bad)
    rules = retention_rules(["ci/app keep=1", "ci/* days=3"])
    assert next(r.pattern for r in rules if r.covers("ci/app")) == "ci/app"


async def test_keep_newest_and_days():
    driver, _w, _generations, reg = gc_world()
    tagged, _ = await image(reg, driver, "ci/app", "tagged", 30, tag="latest")
    old = [(await image(reg, driver, "ci/app", f"old{i}", 20 + i))[0] for i in range(3)]
    recent, _ = await image(reg, driver, "ci/app", "recent", 2)
    other, _ = await image(reg, driver, "team/app", "elsewhere", 40)
    rules = retention_rules(["ci/* keep=1 days=5"])
    report = await collect(driver, reg, grace=0, propagation=0, retention=rules)
    # keep=1 keeps `recent` (the newest), days=5 keeps it too; the three old go, and
    # the repository no rule covers is untouched.
    assert report.manifests_deleted == 3
    assert await present(reg, "ci/app", tagged) and await present(reg, "ci/app", recent)
    assert not any([await present(reg, "ci/app", d) for d in old])
    assert await present(reg, "team/app", other)
    # Their bytes and layers went in the same collection (the config is shared).
    assert report.deleted == 6 and report.links_removed == 3
    assert await reg.blobs.size(core_digest(b"layer recent")) is not None
    # keep=2 alone keeps the two newest untagged, whatever their age.
    more = [(await image(reg, driver, "ci/app", f"m{i}", 50 + i))[0] for i in range(3)]
    report = await collect(driver, reg, grace=0, propagation=0,
                           retention=retention_rules(["ci/* keep=2"]))
    assert report.manifests_deleted == 2
    assert await present(reg, "ci/app", recent) and await present(reg, "ci/app", more[0])


async def test_children_referrers_and_grace_are_kept():
    driver, _w, _generations, reg = gc_world()
    child, child_body = await image(reg, driver, "ci/multi", "amd64", 30)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": str(child), "size": len(child_body)}]}).encode()
    await reg.manifests.put("ci/multi", "v1", index, OCI_INDEX)
    age(driver, core_digest(index), 30)
    subject = {"mediaType": OCI_MANIFEST, "digest": str(child), "size": len(child_body)}
    signature, _ = await store_image(reg, "ci/multi", None, note="sig", subject=subject)
    age(driver, signature, 30)
    orphan_child, orphan_body = await image(reg, driver, "ci/multi", "old-arm64", 30)
    orphan_sig, _ = await store_image(reg, "ci/multi", None, note="sig2", subject={
        "mediaType": OCI_MANIFEST, "digest": str(orphan_child), "size": len(orphan_body)})
    age(driver, orphan_sig, 30)
    fresh, _ = await store_image(reg, "ci/multi", None, note="just pushed")
    report = await collect(driver, reg, grace=3600, propagation=0,
                           retention=retention_rules(["ci/* keep=0"]))
    # The tagged index's child, and the signature of that child, stay; the manifest
    # no one names goes with its signature; one inside the grace period stays.
    assert await present(reg, "ci/multi", child) and await present(reg, "ci/multi", signature)
    assert not await present(reg, "ci/multi", orphan_child)
    assert not await present(reg, "ci/multi", orphan_sig)
    assert await present(reg, "ci/multi", fresh)
    assert report.manifests_deleted == 2
    assert await reg.referrers.list("ci/multi", orphan_child) == []
    assert [d["digest"] for d in await reg.referrers.list("ci/multi", child)] == [
        str(signature)]


async def test_dry_run_deletes_nothing_and_counts_the_same():
    driver, _w, _generations, reg = gc_world()
    old, _ = await image(reg, driver, "ci/app", "old", 30)
    rules = retention_rules(["ci/* days=7"])
    dry = await collect(driver, reg, grace=0, propagation=0, dry_run=True,
                        retention=rules)
    assert dry.manifests_deleted == 1 and dry.deleted == 3  # itself, config, layer
    assert await present(reg, "ci/app", old)
    real = await collect(driver, reg, grace=0, propagation=0, retention=rules)
    assert real.manifests_deleted == 1 and real.deleted == 3
    assert not await present(reg, "ci/app", old)


async def test_a_tag_pushed_while_retention_deletes_is_never_dangling():
    """The race: retention picked an old untagged manifest; a client tags it (pushes
    the same bytes by tag) just as its revision link goes. The tag must resolve."""
    driver, watch, _generations, reg = gc_world()
    old, body = await image(reg, driver, "ci/app", "reused", 30)
    real_delete = driver.delete
    pushed = asyncio.Event()

    async def race_then_delete(path: str) -> None:
        if "/_manifests/revisions/" in path and not pushed.is_set():
            # The tag push runs after retention chose the manifest and checked it,
            # just before its link is removed.
            await reg.manifests.put("ci/app", "release", body, OCI_MANIFEST)
            pushed.set()
        await real_delete(path)

    driver.delete = race_then_delete
    task = asyncio.create_task(collect(driver, reg, grace=0, propagation=0.6,
                                       retention=retention_rules(["ci/* keep=0"])))
    while not watch.active:
        await asyncio.sleep(0.05)
        await watch.refresh()
    report = await task
    assert pushed.is_set()
    got = await reg.manifests.get("ci/app", "release")
    assert got.digest == old and got.data == body
    assert report.manifests_deleted == 0 and report.manifests_kept_seen == 1
    assert await reg.blobs.size(core_digest(b"layer reused")) is not None
