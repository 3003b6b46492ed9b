"""Tags over the memory driver: targets by listing, markers, and their races."""

from __future__ import annotations

import pytest
from core_helpers import delta, ops
from pushing import store_image

from registry.core.errors import ManifestUnknown
from registry.storage import paths


async def test_every_target_costs_two_listings_whatever_the_tag_count(reg, driver):
    expected = {}
    for i in range(300):
        digest, _ = await store_image(reg, "spack/cache", f"t{i:04d}", note=str(i % 7))
        expected[f"t{i:04d}"] = digest
    before = ops(driver)
    assert await reg.tags.targets("spack/cache") == expected
    assert delta(before, ops(driver)) == {"list": 2}


async def test_a_moved_tag_keeps_one_marker(reg, driver):
    first, _ = await store_image(reg, "r", "latest", note="1")
    second, _ = await store_image(reg, "r", "latest", note="2")
    assert await reg.tags.targets("r") == {"latest": second}
    assert await driver.list(paths.tag_map_dir("r")) == [
        f"latest.{second.algorithm}.{second.hex}"]
    assert first != second


async def test_tags_without_markers_are_read(reg, driver):
    """Tags written before markers existed (or whose marker would be too long)."""
    digest, _ = await store_image(reg, "r", "old")
    await driver.delete(paths.tag_map_dir("r"))
    before = ops(driver)
    assert await reg.tags.targets("r") == {"old": digest}
    assert delta(before, ops(driver)) == {"list": 2, "get_content": 1}


async def test_two_markers_mean_read_current(reg, driver):
    """A crash between writing `current` and removing the old marker leaves two."""
    old, _ = await store_image(reg, "r", "v1", note="old")
    new, _ = await store_image(reg, "r", "v1", note="new")
    await driver.put_content(paths.tag_map_entry("r", "v1", old), b"")
    reg.tags.generations.bump("r")
    assert await reg.tags.targets("r") == {"v1": new}


async def test_deleting_a_manifest_deletes_its_tags_from_one_listing(reg, driver):
    for i in range(200):
        await store_image(reg, "big", f"t{i:03d}", note=str(i))
    shared, _ = await store_image(reg, "big", "a", note="shared")
    await store_image(reg, "big", "b", note="shared")
    before = ops(driver)
    await reg.manifests.delete("big", str(shared))
    spent = delta(before, ops(driver))
    assert spent.get("get_content", 0) <= 4  # the revision link and the two tags' targets
    assert "a" not in await reg.tags.list("big") and "b" not in await reg.tags.list("big")
    assert len(await reg.tags.list("big")) == 200
    with pytest.raises(ManifestUnknown):
        await reg.tags.resolve("big", "a")
    markers = await driver.list(paths.tag_map_dir("big"))
    assert len(markers) == 200 and not any(m.startswith(("a.", "b.")) for m in markers)


async def test_a_push_to_one_repository_keeps_another_repositorys_caches(reg, driver):
    for i in range(20):
        await store_image(reg, "quiet", f"v{i}", note=str(i))
    await reg.tags.list("quiet")
    await reg.tags.resolve("quiet", "v3")
    await reg.manifests.get("quiet", "v3")
    before = ops(driver)
    await store_image(reg, "busy", "latest")
    between = ops(driver)
    assert await reg.tags.list("quiet") == sorted(f"v{i}" for i in range(20))
    await reg.tags.resolve("quiet", "v3")
    await reg.manifests.get("quiet", "v3")
    assert delta(between, ops(driver)) == {}, "the quiet repository was read again"
    assert delta(before, between)  # the push itself did go to the store


async def test_a_repeated_get_reads_nothing_and_follows_every_write(reg, driver):
    """ManifestService.get keeps its answer per (repo, reference, with body) while the
    repository's generation holds: a repeat costs no store operation, and a moved,
    deleted or re-pushed tag or a deleted manifest is answered at once."""
    first, _ = await store_image(reg, "r", "latest", note="1")
    for with_body in (True, False):
        assert (await reg.manifests.get("r", "latest", with_body)).digest == first
    assert (await reg.manifests.get("r", str(first))).digest == first
    before = ops(driver)
    for with_body in (True, False):
        assert (await reg.manifests.get("r", "latest", with_body)).digest == first
    assert delta(before, ops(driver)) == {}
    second, _ = await store_image(reg, "r", "latest", note="2")
    for with_body in (True, False):
        assert (await reg.manifests.get("r", "latest", with_body)).digest == second
    await reg.tags.delete("r", "latest")
    for with_body in (True, False):
        with pytest.raises(ManifestUnknown):
            await reg.manifests.get("r", "latest", with_body)
    await reg.manifests.delete("r", str(first))
    with pytest.raises(ManifestUnknown):
        await reg.manifests.get("r", str(first))
    again, _ = await store_image(reg, "r", "latest", note="1")
    assert again == first and (await reg.manifests.get("r", "latest")).digest == first
