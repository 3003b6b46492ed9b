"""The mount rule (core/mounts.py), called directly over the memory driver: every way a
stored blob may or may not be linked into another repository."""

from __future__ import annotations

from pushing import core_digest, store_blob

from registry.core.access import NOBODY, OPERATOR, Caller
from registry.core.factory import CoreSettings, build_registry
from registry.core.mounts import Mounts


def pulls(*repos: str) -> Caller:
    return Caller(lambda scope: scope.action == "pull" and scope.resource in repos)


async def test_a_refused_link_looks_like_a_blob_nobody_has(reg):
    digest = await store_blob(reg, "secret/app", b"secret bytes")
    nowhere = core_digest(b"nobody has these")
    for d in (digest, nowhere):
        for source in (None, "secret/app"):
            assert await reg.mounts.link("team/x", d, pulls("team/x"), source) is None
            assert await reg.uploads.mount("team/x", d, source, pulls("team/x")) is False
    assert not await reg.blobs.linked("team/x", digest)


async def test_a_named_source_the_caller_may_pull(reg):
    data = b"shared bytes"
    digest = await store_blob(reg, "lib/base", data)
    assert await reg.mounts.link("team/x", digest, pulls("lib/base"), "lib/base") == len(data)
    assert await reg.blobs.linked("team/x", digest)
    # There already: nothing more is exposed, whoever asks.
    assert await reg.mounts.link("team/x", digest, NOBODY) == len(data)
    # A source that does not hold it is no ground, even for a caller who may pull it.
    assert await reg.mounts.link("team/y", digest, pulls("team/x", "lib/other"),
                                 "lib/other") is None


async def test_everything_is_the_automatic_mount_unless_turned_off(driver):
    on = build_registry(driver)
    digest = await store_blob(on, "a", b"anywhere")
    assert await on.mounts.link("b", digest, OPERATOR) is not None
    off = build_registry(driver, settings=CoreSettings(auto_mount=False))
    assert await off.mounts.link("c", digest, OPERATOR) is None
    assert await off.mounts.link("c", digest, OPERATOR, source="a") is not None


async def test_holders_from_the_index_are_checked_in_storage(reg):
    digest = await store_blob(reg, "lib/base", b"indexed")
    asked = []

    async def holders(d):
        asked.append(d)
        return ["lib/stale", "secret/app", "lib/base"]  # the index may lag or lie

    mounts = Mounts(reg.blobs, holders)
    assert await mounts.link("team/x", digest, pulls("secret/app", "lib/stale")) is None
    assert await mounts.link("team/x", digest, pulls("lib/stale", "lib/base")) is not None
    assert asked == [digest, digest]


async def test_a_vouching_upstream(reg):
    digest = await store_blob(reg, "a", b"cached")
    said = {"b": True, "c": False}

    async def upstream(repo, d):
        return said[repo]

    assert await reg.mounts.link("b", digest, NOBODY, vouch=upstream) is not None
    assert await reg.mounts.link("c", digest, NOBODY, vouch=upstream) is None
