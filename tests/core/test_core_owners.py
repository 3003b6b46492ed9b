"""Who owns which area of the tree: the blob service is the only way into and out
of `blobs/`, and a room's handle cannot reach past its own area."""

from __future__ import annotations

import pytest
from pushing import core_digest, store_blob

from registry.core.areas import Area, AuthArea, SpackArea
from registry.core.scratch import ScratchSpace
from registry.storage import paths
from registry.storage.driver import StorageError


async def test_remove_drops_every_cached_size_itself(reg, driver):
    digest = await store_blob(reg, "app/a", b"soon gone")
    assert await reg.blobs.size(digest) == len(b"soon gone")  # cached now
    assert await reg.blobs.remove(digest)
    # No caller bumps a generation: the owner of blobs/ did, with the file.
    assert await reg.blobs.size(digest) is None
    assert not await reg.blobs.remove(digest)


async def test_remove_to_moves_the_blob_aside_and_commit_puts_it_back(reg, driver):
    digest = await store_blob(reg, "app/a", b"kept aside")
    aside = paths.quarantined(digest)
    assert await reg.blobs.remove(digest, to=aside)
    assert await reg.blobs.size(digest) is None
    assert await driver.get_content(aside) == b"kept aside"
    assert await reg.blobs.commit(digest, aside)
    assert await reg.blobs.read(digest) == b"kept aside"
    assert [b.digest async for b in reg.blobs.stored()] == [digest]


async def test_commit_leaves_the_staged_file_when_the_blob_is_there(reg, driver):
    digest = await store_blob(reg, "app/a", b"stored once")
    staged = paths.scratch("a-copy")
    await driver.put_content(staged, b"stored once")
    assert not await reg.blobs.commit(digest, staged)
    assert await driver.get_content(staged) == b"stored once"  # the caller's to drop


async def test_an_area_name_cannot_leave_its_area(driver):
    area = Area(driver, "spack/c/_journal")
    for name in ("../x", "a/../../b", "/abs", "a//b", "."):
        with pytest.raises(ValueError):
            await area.write(name, b"no")
    assert [p.path async for p in driver.walk("")] == []


async def test_handles_write_where_paths_py_says(driver):
    spack = SpackArea(driver)
    await spack.journal("team/x").write("000000000001/e1", b"{}")
    await spack.snapshots("team/x").write("e1", b"{}")
    await spack.keep_signed("team/x", core_digest(b"doc"), b"signed")
    await AuthArea(driver).records("users").write("alice", b"{}")
    assert sorted([p.path async for p in driver.walk("")]) == sorted([
        f"{paths.spack_journal_dir('team/x')}/000000000001/e1",
        f"{paths.spack_snapshots_dir('team/x')}/e1",
        paths.spack_signed("team/x", core_digest(b"doc")),
        paths.auth_entry("users", "alice"),
    ])
    assert await spack.caches() == ["team/x"]
    assert await spack.signed("team/x", core_digest(b"doc")) == b"signed"
    assert await AuthArea(driver).records("users").read("bob") is None


def test_a_store_without_local_files_has_no_scratch_space_for_the_node_cache(driver):
    with pytest.raises(StorageError):
        ScratchSpace(driver).directory()
