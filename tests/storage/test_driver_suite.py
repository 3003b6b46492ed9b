"""The driver protocol, tested once and run against every driver (see conftest.py).

Each test removes what it wrote: the fixture fails any test that leaves files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tracemalloc

import pytest

from registry.storage import paths
from registry.storage.driver import Driver, InvalidPath, PathNotFound, StorageError

UPLOAD = "repositories/lib/app/_uploads/0b7c3c5e-2f1e-4d8a-9a55-1f0d2c3b4a59/data"
MiB = 1 << 20


async def read_all(driver: Driver, path: str, offset: int = 0, length: int | None = None,
                   chunk_size: int = 1 << 20) -> bytes:
    return b"".join([c async for c in driver.reader(path, offset, length, chunk_size)])


# -- whole objects -----------------------------------------------------------

async def test_put_get_and_atomic_replace(driver: Driver) -> None:
    await driver.put_content("a/b/file", b"first")
    assert await driver.get_content("a/b/file") == b"first"
    await driver.put_content("a/b/file", b"second, longer")
    assert await driver.get_content("a/b/file") == b"second, longer"
    assert (await driver.stat("a/b/file")).size == len(b"second, longer")
    await driver.put_content("a/b/file", b"")
    assert await driver.get_content("a/b/file") == b""
    await driver.delete("a")


async def test_replace_is_never_partial(driver: Driver) -> None:
    """Readers racing a writer see one whole version or the other, never a mix."""
    old, new = b"o" * (256 << 10), b"n" * (512 << 10)
    await driver.put_content("race/x", old)

    async def reads() -> set[bytes]:
        return {await driver.get_content("race/x") for _ in range(10)}

    writes = [driver.put_content("race/x", new if i % 2 else old) for i in range(6)]
    seen, *_ = await asyncio.gather(reads(), *writes)
    assert seen <= {old, new}
    await driver.delete("race")


async def test_get_content_limits_and_missing(driver: Driver) -> None:
    await driver.put_content("lim/x", b"0123456789")
    assert await driver.get_content("lim/x", max_bytes=10) == b"0123456789"
    with pytest.raises(StorageError):
        await driver.get_content("lim/x", max_bytes=9)
    with pytest.raises(PathNotFound):
        await driver.get_content("lim/nothing")
    with pytest.raises(PathNotFound):
        await driver.get_content("nothing/at/all")
    await driver.delete("lim/x")


# -- reader ------------------------------------------------------------------

async def test_reader_offset_length_chunking(driver: Driver) -> None:
    data = os.urandom(3 * MiB + 12345)
    await driver.put_content("r/blob", data)
    chunks = [c async for c in driver.reader("r/blob", chunk_size=64 << 10)]
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 64 << 10
    assert await read_all(driver, "r/blob", 1000) == data[1000:]
    assert await read_all(driver, "r/blob", 1000, 5000) == data[1000:6000]
    assert await read_all(driver, "r/blob", len(data) - 10, 100) == data[-10:]
    assert await read_all(driver, "r/blob", len(data)) == b""
    assert await read_all(driver, "r/blob", 0, 0) == b""
    with pytest.raises(PathNotFound):
        await read_all(driver, "r/missing")
    await driver.delete("r/blob")


async def test_reader_stops_early_without_leaking(driver: Driver) -> None:
    await driver.put_content("early/b", os.urandom(2 * MiB))
    stream = driver.reader("early/b", chunk_size=MiB // 4)
    first = await anext(stream)
    assert len(first) <= MiB // 4
    await stream.aclose()
    await driver.delete("early")


# -- writer ------------------------------------------------------------------

@pytest.mark.parametrize("path", [UPLOAD, "plain/file"])
async def test_writer_append_reopen_truncate_commit(make_driver, path: str) -> None:
    driver = make_driver()
    w = await driver.writer(path)
    assert w.size == 0
    await w.close()
    assert (await driver.stat(path)).size == 0

    a, b, c = b"a" * 1000, os.urandom(7 * MiB), b"c" * 10
    w = await driver.writer(path, append=True)
    assert w.size == 0
    await w.write(a)
    await w.close()
    w = await driver.writer(path, append=True)
    assert w.size == len(a)
    await w.write(b)
    await w.close()
    assert (await driver.stat(path)).size == len(a) + len(b)

    # A failed chunk is rolled back to where its session started.
    w = await driver.writer(path, append=True)
    await w.write(b"garbage" * 1000)
    await w.truncate(len(a) + len(b))
    assert w.size == len(a) + len(b)
    await w.close()
    assert (await driver.stat(path)).size == len(a) + len(b)

    # Reopened elsewhere (another replica), continued and committed.
    other = make_driver()
    w = await other.writer(path, append=True)
    assert w.size == len(a) + len(b)
    await w.write(c)
    await w.commit()
    assert await read_all(driver, path) == a + b + c
    assert await read_all(driver, path, len(a) - 5, 10) == a[-5:] + b[:5]
    assert (await driver.stat(path)).size == len(a) + len(b) + len(c)
    await driver.delete(path.split("/")[0])


async def test_writer_truncate_into_earlier_data(driver: Driver) -> None:
    w = await driver.writer(UPLOAD)
    await w.write(b"0123456789")
    await w.close()
    w = await driver.writer(UPLOAD, append=True)
    await w.write(b"abcdef")
    await w.truncate(4)
    assert w.size == 4
    await w.write(b"XY")
    await w.close()
    assert await read_all(driver, UPLOAD) == b"0123XY"
    w = await driver.writer(UPLOAD, append=True)
    await w.truncate(0)
    await w.close()
    assert (await driver.stat(UPLOAD)).size == 0
    await driver.delete("repositories")


async def test_writer_without_append_starts_over(driver: Driver) -> None:
    w = await driver.writer(UPLOAD)
    await w.write(b"old data")
    await w.close()
    w = await driver.writer(UPLOAD)
    assert w.size == 0
    await w.write(b"new")
    await w.commit()
    assert await driver.get_content(UPLOAD) == b"new"
    await driver.delete("repositories")


async def test_writer_append_to_committed_file(driver: Driver) -> None:
    await driver.put_content("app/f", b"hello ")
    w = await driver.writer("app/f", append=True)
    assert w.size == 6
    await w.write(b"world")
    await w.commit()
    assert await driver.get_content("app/f") == b"hello world"
    await driver.delete("app")


async def test_writer_cancel_removes_everything(make_driver) -> None:
    driver = make_driver()
    w = await driver.writer(UPLOAD)
    await w.write(b"x" * 100)
    await w.close()
    w = await driver.writer(UPLOAD, append=True)
    await w.write(os.urandom(6 * MiB))  # a multipart session in flight
    await w.cancel()
    with pytest.raises(PathNotFound):
        await driver.stat(UPLOAD)
    with contextlib.suppress(PathNotFound):  # the directory may stay, empty
        assert "data" not in await driver.list(UPLOAD.rsplit("/", 1)[0])


async def test_commit_then_move_publishes_once(driver: Driver) -> None:
    """What an upload does at the end: commit its data, move it into blobs/."""
    data = os.urandom(6 * MiB + 7)
    w = await driver.writer(UPLOAD)
    await w.close()
    for i in range(0, len(data), 2 * MiB):
        w = await driver.writer(UPLOAD, append=True)
        await w.write(data[i:i + 2 * MiB])
        await w.close()
    w = await driver.writer(UPLOAD, append=True)
    await w.commit()
    await driver.move(UPLOAD, "blobs/sha256/ab/abcdef")
    with pytest.raises(PathNotFound):
        await driver.stat(UPLOAD)
    assert hashlib.sha256(await read_all(driver, "blobs/sha256/ab/abcdef")).digest() == \
        hashlib.sha256(data).digest()
    await driver.delete("blobs")
    with contextlib.suppress(PathNotFound):  # a driver may prune emptied parents on move
        await driver.delete("repositories")


# -- metadata ----------------------------------------------------------------

async def test_stat(driver: Driver) -> None:
    await driver.put_content("s/dir/file", b"12345")
    info = await driver.stat("s/dir/file")
    assert (info.path, info.size, info.is_dir) == ("s/dir/file", 5, False)
    assert info.mtime > 0
    assert (await driver.stat("s/dir")).is_dir
    assert (await driver.stat("s")).is_dir
    for missing in ("s/dir/fil", "s/di", "nothing", "s/dir/file/below"):
        with pytest.raises(PathNotFound):
            await driver.stat(missing)
    await driver.delete("s")


async def test_list(driver: Driver) -> None:
    for p in ("l/a", "l/b/c", "l/b/d/e", "l/bc", "l/_x/y"):
        await driver.put_content(p, b"x")
    w = await driver.writer("l/up")
    await w.close()
    assert await driver.list("l") == ["_x", "a", "b", "bc", "up"]
    assert await driver.list("l/b") == ["c", "d"]
    assert "l" in await driver.list("")
    with pytest.raises(PathNotFound):
        await driver.list("l/nothing")
    await driver.delete("l")
    with pytest.raises(PathNotFound):
        await driver.list("l")


async def test_move(driver: Driver) -> None:
    await driver.put_content("m/src", b"payload")
    await driver.put_content("m/dst/existing", b"old")
    await driver.move("m/src", "m/dst/existing")
    assert await driver.get_content("m/dst/existing") == b"payload"
    with pytest.raises(PathNotFound):
        await driver.stat("m/src")
    await driver.move("m/dst/existing", "m/new/deep/place")
    assert await driver.get_content("m/new/deep/place") == b"payload"
    with pytest.raises(PathNotFound):
        await driver.move("m/nothing", "m/else")
    await driver.delete("m")


async def test_delete_recursive_and_missing(driver: Driver) -> None:
    for p in ("d/x/1", "d/x/2/3", "d/xy", "d/y"):
        await driver.put_content(p, b"x")
    await driver.delete("d/x")
    assert await driver.list("d") == ["xy", "y"]
    await driver.delete("d/xy")
    with pytest.raises(PathNotFound):
        await driver.delete("d/xy")
    with pytest.raises(PathNotFound):
        await driver.delete("d/x")
    await driver.delete("d")
    with pytest.raises(PathNotFound):
        await driver.stat("d/y")


BAD_PATHS = ["", "/abs", "a/", "a//b", "a/../b", "./a", "..", "a/.", "a b", "a\\b", "a/b%2f",
             "a/\x00", "a\n", "x" * 256, "x/" * 1792 + "x"]


@pytest.mark.parametrize("bad", BAD_PATHS)
async def test_invalid_paths_refused(driver: Driver, bad: str) -> None:
    ops = [
        driver.get_content(bad), driver.put_content(bad, b"x"), driver.writer(bad),
        driver.stat(bad), driver.move(bad, "ok"), driver.move("ok", bad), driver.delete(bad),
        read_all(driver, bad),
    ]
    ops += [driver.compose(bad, ["ok"]), driver.compose("ok", ["ok", bad])]
    if bad:  # "" is the root for list() and walk()
        ops += [driver.list(bad), walked(driver, bad)]
    for op in ops:
        with pytest.raises(InvalidPath):
            await op


async def test_no_redirect_by_default(driver: Driver) -> None:
    await driver.put_content("rd/x", b"x")
    assert await driver.redirect_url("rd/x") is None
    local = driver.local_path("rd/x")
    assert local is None or open(local, "rb").read() == b"x"  # noqa: ASYNC230
    await driver.delete("rd")


# -- large streaming ---------------------------------------------------------

async def test_large_streaming_write_has_bounded_memory(driver: Driver) -> None:
    """96 MiB through a writer and back through a reader with far less memory."""
    if driver.name == "memory":
        pytest.skip("the memory driver keeps every file in memory by nature")
    block = os.urandom(MiB)
    total = 96
    tracemalloc.start()
    try:
        w = await driver.writer(UPLOAD)
        for i in range(total):
            await w.write(block[i:] + block[:i])
        await w.commit()
        _, peak_write = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        h = hashlib.sha256()
        async for chunk in driver.reader(UPLOAD, chunk_size=MiB):
            h.update(chunk)
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256()
    for i in range(total):
        expected.update(block[i:] + block[:i])
    assert h.hexdigest() == expected.hexdigest()
    assert (await driver.stat(UPLOAD)).size == total * MiB
    assert peak_write < 32 * MiB, f"writer peaked at {peak_write / MiB:.1f} MiB"
    assert peak_read < 24 * MiB, f"reader peaked at {peak_read / MiB:.1f} MiB"
    await driver.delete("repositories")


# -- emptied directories -----------------------------------------------------

async def test_deleting_the_last_file_removes_its_directories(driver: Driver) -> None:
    """Directories exist only while they hold something, on every driver: an
    emptied repository must vanish from listings (catalog, tags/list)."""
    await driver.put_content("e/keep", b"x")
    await driver.put_content("e/gone/deep/only", b"x")
    await driver.delete("e/gone/deep/only")
    assert await driver.list("e") == ["keep"]
    for missing in ("e/gone", "e/gone/deep"):
        with pytest.raises(PathNotFound):
            await driver.list(missing)
        with pytest.raises(PathNotFound):
            await driver.stat(missing)
    await driver.put_content("e/sub/dir/file", b"x")
    await driver.delete("e/sub/dir")  # deleting a directory prunes its parents too
    assert await driver.list("e") == ["keep"]
    await driver.delete("e/keep")
    with pytest.raises(PathNotFound):
        await driver.list("e")
    assert "e" not in await _root_names(driver)


async def test_move_prunes_the_emptied_source_directory(driver: Driver) -> None:
    await driver.put_content("mv/a/b/src", b"x")
    await driver.move("mv/a/b/src", "mv/dst")
    assert await driver.list("mv") == ["dst"]
    with pytest.raises(PathNotFound):
        await driver.move("mv/a/nothing", "mv/new/dir/x")  # makes no directory either
    assert await driver.list("mv") == ["dst"]
    await driver.delete("mv")


async def _root_names(driver: Driver) -> list[str]:
    try:
        return await driver.list("")
    except PathNotFound:
        return []


async def test_concurrent_writes_and_deletes_in_siblings(driver: Driver) -> None:
    """Pruning races with writes that create the same directories: no write may
    fail because a concurrent delete removed its fresh parent directory."""

    async def churn(i: int) -> None:
        for n in range(8):
            path = f"cc/shared/{i % 3}/f{i}-{n}"
            if n % 3 == 0:
                w = await driver.writer(path)
                await w.write(b"w")
                await w.commit()
            elif n % 3 == 1:
                await driver.put_content(path + ".tmp", b"m")
                await driver.move(path + ".tmp", path)
            else:
                await driver.put_content(path, b"p")
            assert await driver.get_content(path) in (b"w", b"m", b"p")
            await driver.delete(path)

    await asyncio.gather(*(churn(i) for i in range(12)))
    assert "cc" not in await _root_names(driver)


# -- walk --------------------------------------------------------------------

WALK_FILES = {"w/B": b"1", "w/_x/y": b"22", "w/a-b": b"333", "w/a.b": b"", "w/a/b": b"4444",
              "w/a/c/d": b"55555", "w/a0": b"6", "w/z/deep/er/file": b"77"}


async def walked(driver: Driver, path: str, start_after: str = "") -> list[tuple[str, int]]:
    out = []
    async for info in driver.walk(path, start_after):
        assert not info.is_dir and info.mtime > 0
        out.append((info.path, info.size))
    return out


async def _put_walk_files(driver: Driver) -> list[tuple[str, int]]:
    for p, data in WALK_FILES.items():
        await driver.put_content(p, data)
    # A file still being written (segments on s3): listed once, with its size so far.
    w = await driver.writer("w/seg")
    await w.write(b"abc")
    await w.close()
    w = await driver.writer("w/seg", append=True)
    await w.write(b"defg")
    await w.close()
    return sorted([(p, len(d)) for p, d in WALK_FILES.items()] + [("w/seg", 7)])


async def test_walk_order_resume_and_missing(driver: Driver) -> None:
    expected = await _put_walk_files(driver)
    # Byte order of the full path: "a-b" < "a.b" < "a/b" < "a0" (as S3 lists keys).
    assert [p for p, _ in expected][:6] == ["w/B", "w/_x/y", "w/a-b", "w/a.b", "w/a/b",
                                            "w/a/c/d"]
    assert await walked(driver, "w") == expected
    assert await walked(driver, "") == expected  # the whole store, no scratch files
    assert await walked(driver, "w/a") == [("w/a/b", 4), ("w/a/c/d", 5)]
    for after in [p for p, _ in expected] + ["w/a", "w/a/", "w/a/bb", "w/a/c", "w/seg0", "w/",
                                              "w/zz", "v", "x"]:
        assert await walked(driver, "w", after) == [e for e in expected if e[0] > after], after
    assert await walked(driver, "nothing") == []
    assert await walked(driver, "w/nothing/below") == []
    assert await walked(driver, "w/B") == []  # a file has nothing below it
    await driver.delete("w")


async def test_walk_pages(driver: Driver) -> None:
    """Small listing pages (s3), so pages break inside a segmented file's segments."""
    inner = getattr(driver, "inner", driver)
    if hasattr(inner, "walk_page"):
        inner.walk_page = 2
    expected = await _put_walk_files(driver)
    w = await driver.writer("w/seg", append=True)
    await w.write(b"h")
    await w.close()
    expected[expected.index(("w/seg", 7))] = ("w/seg", 8)
    assert await walked(driver, "") == expected
    assert await walked(driver, "w", "w/a/b") == [e for e in expected if e[0] > "w/a/b"]
    await driver.delete("w")


# -- compose -----------------------------------------------------------------

async def test_compose(driver: Driver) -> None:
    a, b, c = os.urandom(3 * MiB), os.urandom(6 * MiB + 1), b"tail"
    await driver.put_content("c/a", a)
    await driver.put_content("c/b", b)
    await driver.put_content("c/c", c)
    assert await driver.compose("c/out/x", ["c/a", "c/b", "c/c"]) == len(a + b + c)
    assert await read_all(driver, "c/out/x") == a + b + c
    assert await driver.compose("c/small", ["c/c", "c/c"]) == 8
    assert await driver.get_content("c/small") == c + c
    assert await driver.compose("c/empty", []) == 0
    assert await driver.get_content("c/empty") == b""
    # dst among the sources: an append, still atomic.
    assert await driver.compose("c/small", ["c/small", "c/a"]) == 8 + len(a)
    assert await read_all(driver, "c/small") == c + c + a
    # A sealed file still in segments is a source like any other.
    w = await driver.writer("c/w")
    await w.write(b"seg1")
    await w.close()
    w = await driver.writer("c/w", append=True)
    await w.write(b"seg2")
    await w.seal()
    assert await driver.compose("c/fromseg", ["c/w", "c/c"]) == 12
    assert await driver.get_content("c/fromseg") == b"seg1seg2tail"
    await driver.delete("c")


async def test_compose_missing_source_changes_nothing(driver: Driver) -> None:
    await driver.put_content("cm/a", b"a")
    await driver.put_content("cm/dst", b"old")
    with pytest.raises(PathNotFound):
        await driver.compose("cm/dst", ["cm/a", "cm/missing"])
    with pytest.raises(PathNotFound):
        await driver.compose("cm/new/x", ["cm/missing"])
    assert await driver.get_content("cm/dst") == b"old"
    assert await driver.list("cm") == ["a", "dst"]
    await driver.delete("cm")


async def test_compose_is_never_partial(driver: Driver) -> None:
    old, part = b"o" * (64 << 10), os.urandom(3 * MiB)
    await driver.put_content("ca/dst", old)
    await driver.put_content("ca/p", part)
    new = part * 3
    seen: set[bytes] = set()

    async def reads() -> None:
        for _ in range(8):
            with contextlib.suppress(PathNotFound):
                seen.add(hashlib.sha256(await read_all(driver, "ca/dst")).digest())
            await asyncio.sleep(0)

    await asyncio.gather(reads(), driver.compose("ca/dst", ["ca/p"] * 3))
    assert seen <= {hashlib.sha256(old).digest(), hashlib.sha256(new).digest()}
    assert await read_all(driver, "ca/dst") == new
    await driver.delete("ca")


# -- seal --------------------------------------------------------------------

async def test_seal_then_move(make_driver) -> None:
    """seal makes the bytes durable; another replica moves them into place."""
    driver = make_driver()
    data = os.urandom(6 * MiB + 3)
    w = await driver.writer(UPLOAD)
    await w.write(data[:MiB])
    await w.close()
    w = await driver.writer(UPLOAD, append=True)
    await w.write(data[MiB:])
    await w.seal()
    assert (await driver.stat(UPLOAD)).size == len(data)
    other = make_driver()
    assert (await other.stat(UPLOAD)).size == len(data)
    await other.move(UPLOAD, "blobs/sha256/cd/cdef")
    assert await read_all(driver, "blobs/sha256/cd/cdef") == data
    with pytest.raises(PathNotFound):
        await driver.stat(UPLOAD)
    with pytest.raises(PathNotFound):
        await driver.list("repositories")
    await driver.delete("blobs")


async def test_commit_publishes_any_path(driver: Driver) -> None:
    """commit publishes one object even for a path under _uploads/ (the storage
    layer knows nothing of the OCI layout)."""
    w = await driver.writer(UPLOAD)
    await w.write(b"abc")
    await w.close()
    w = await driver.writer(UPLOAD, append=True)
    await w.write(b"def")
    await w.commit()
    assert await driver.get_content(UPLOAD) == b"abcdef"
    assert await walked(driver, "repositories") == [(UPLOAD, 6)]
    await driver.delete("repositories")


# -- object keys (the S3-compatible API's layout) -------------------------------

OBJECT_KEYS = ["a", "a/b", "a//b", "/", "//x", ".", "..", "a/", "a/../b", "a-", "a b",
               "ü/€", "9:z{", "_", "linux/zlib-1.3.spack", "x" * 200 + "/" + "y" * 254]


async def test_object_keys_through_put_get_walk(driver: Driver) -> None:
    """Keys S3 allows together (`a`, `a/b`, `a/`, `a//b`) stored side by side, walked
    in S3's key order, read back by key."""
    for key in OBJECT_KEYS:
        await driver.put_content(paths.object_path("bkt", key), key.encode())
    listed = [paths.object_key("bkt", info.path)
              async for info in driver.walk(paths.bucket_dir("bkt"))]
    assert listed == sorted(OBJECT_KEYS, key=lambda k: k.encode())
    for key in OBJECT_KEYS:
        assert await driver.get_content(paths.object_path("bkt", key)) == key.encode()
    # Resuming after a key, and listing under a prefix, work on encoded paths.
    after = paths.object_path("bkt", "a/")
    rest = [paths.object_key("bkt", i.path)
            async for i in driver.walk(paths.bucket_dir("bkt"), after)]
    assert rest == [k for k in listed if k.encode() > b"a/"]
    under = paths.bucket_dir("bkt") + "/" + paths.encode_prefix("a/")
    assert [k for k in listed if k.startswith("a/")] == [
        paths.object_key("bkt", i.path) async for i in driver.walk(paths.bucket_dir("bkt") + "/a")
        if i.path.startswith(under)]
    await driver.delete(paths.OBJECTS)


# -- the CheckedDriver every driver runs in ------------------------------------

async def test_errors_are_tagged_and_operations_counted(driver: Driver) -> None:
    with pytest.raises(PathNotFound) as info:
        await driver.get_content("tag/missing/file")
    assert (info.value.driver, info.value.path) == (driver.name, "tag/missing/file")
    with pytest.raises(PathNotFound) as info:
        await driver.move("tag/nothing", "tag/else")
    assert info.value.driver == driver.name and info.value.path in ("tag/nothing", "")
    await driver.put_content("tag/x", b"12345")
    assert b"".join([c async for c in driver.reader("tag/x")]) == b"12345"
    w = await driver.writer("tag/w")
    await w.write(b"abc")
    await w.commit()
    await driver.delete("tag")
    ops = driver.stats()["ops"]
    assert ops["get_content"]["not_found"] == 1 and ops["move"]["not_found"] == 1
    assert ops["put_content"]["bytes_written"] == 5 and ops["reader"]["bytes_read"] == 5
    assert ops["writer"]["bytes_written"] == 3 and ops["delete"]["calls"] == 1
    assert list(await _root_names(driver)) == []
