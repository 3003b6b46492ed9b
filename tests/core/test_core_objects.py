"""The S3-compatible object service, called directly over the memory driver."""

from __future__ import annotations

import base64
import hashlib

import pytest
from pushing import chunks, core_digest, store_blob

from registry.core.errors import ObjectError, RangeUnsatisfiable
from registry.core.factory import CoreSettings, build_registry
from registry.core.object_listing import make_token, parse_token
from registry.core.serving import ByteStream
from registry.core.types import Checks
from registry.spack.layout import key_class
from registry.storage import paths

MiB = 1 << 20
H = "abcdefghijklmnopqrstuvwxyz234567"


@pytest.fixture
def reg(driver):
    """The services with Spack's key grammar injected, as the server wires them."""
    return build_registry(driver, settings=CoreSettings(object_keys=key_class))


async def read_all(plan) -> bytes:
    assert isinstance(plan.body, ByteStream)
    return b"".join([c async for c in plan.body.chunks])


async def put(reg, bucket: str, key: str, data: bytes, **checks):
    return await reg.objects.put(bucket, key, chunks(data), Checks(len(data), **checks))


def blob_key(data: bytes, prefix: str = "") -> str:
    h = hashlib.sha256(data).hexdigest()
    return f"{prefix}blobs/sha256/{h[:2]}/{h}"


async def listing(reg, bucket: str, **kw):
    page = await reg.objects.list(bucket, **kw)
    return [o.key for o in page.objects], page.prefixes, page


async def test_put_get_head_delete(reg, driver):
    info = await put(reg, "cache", "v3/layout.json", b'{"signing": "gpg"}')
    assert info.etag == hashlib.md5(b'{"signing": "gpg"}').hexdigest()
    assert await reg.objects.bucket_exists("cache")
    head = await reg.objects.head("cache", "v3/layout.json")
    assert (head.size, head.etag) == (18, info.etag)
    plan = await reg.objects.serve("cache", "v3/layout.json", "bytes=1-3")
    assert await read_all(plan) == b'"si' and plan.range.length == 3
    with pytest.raises(RangeUnsatisfiable):
        await reg.objects.serve("cache", "v3/layout.json", "bytes=100-")
    assert (await reg.objects.serve("cache", "v3/layout.json",
                                    if_none_match=info.quoted_etag)).not_modified
    with pytest.raises(ObjectError) as exc:
        await reg.objects.serve("cache", "v3/layout.json", if_match='"nope"')
    assert exc.value.status == 412
    # Overwriting replaces the bytes: the old ones go.
    await put(reg, "cache", "v3/layout.json", b"{}")
    assert len([p async for p in driver.walk(paths.OBJECT_DATA)]) == 1
    assert await reg.objects.delete("cache", "v3/layout.json")
    assert not await reg.objects.delete("cache", "v3/layout.json")
    assert [p async for p in driver.walk(paths.OBJECT_DATA)] == []
    with pytest.raises(ObjectError) as exc:
        await reg.objects.head("cache", "v3/layout.json")
    assert exc.value.s3_code == "NoSuchKey"
    with pytest.raises(ObjectError) as exc:
        await reg.objects.head("nobucket", "x")
    assert exc.value.s3_code == "NoSuchBucket"


async def test_checks_refuse_and_leave_nothing(reg, driver):
    with pytest.raises(ObjectError) as exc:
        await put(reg, "b1b", "k", b"data", md5=hashlib.md5(b"other").digest())
    assert exc.value.s3_code == "BadDigest"
    with pytest.raises(ObjectError) as exc:
        await put(reg, "b1b", "k", b"data", sha256="0" * 64)
    assert exc.value.s3_code == "XAmzContentSHA256Mismatch"
    with pytest.raises(ObjectError) as exc:
        await reg.objects.put("b1b", "k", chunks(b"abc"), Checks(4))
    assert exc.value.s3_code == "IncompleteBody"
    with pytest.raises(ObjectError) as exc:
        await put(reg, "b1b", blob_key(b"real"), b"fake")
    assert exc.value.s3_code == "BadDigest"
    assert [p.path async for p in driver.walk("") if not p.path.startswith("buckets/")] == []
    with pytest.raises(ObjectError) as exc:
        await put(reg, "b1b", "x" * 300, b"data")
    assert exc.value.s3_code == "KeyTooLongError"
    with pytest.raises(ObjectError) as exc:
        await put(reg, "Bad_Bucket", "k", b"data")
    assert exc.value.s3_code == "InvalidBucketName"


async def test_blob_keys_are_stored_once(reg, driver):
    data = b"a tarball" * 1000
    digest = await store_blob(reg, "spack/cache", data)
    await put(reg, "cache", blob_key(data), data)
    await put(reg, "cache", blob_key(data, "mirror/"), data)
    blobs = [p.path async for p in driver.walk(paths.BLOBS)]
    assert blobs == [paths.blob(digest)]
    assert [p async for p in driver.walk(paths.OBJECT_DATA)] == []
    assert await read_all(await reg.objects.serve("cache", blob_key(data))) == data
    # A new blob arrives through S3 first; deleting its key keeps the blob.
    other = b"only over s3"
    await put(reg, "cache", blob_key(other), other)
    assert await reg.blobs.size(core_digest(other)) == len(other)
    await reg.objects.delete("cache", blob_key(other))
    assert await reg.blobs.size(core_digest(other)) == len(other)


async def test_v2_tarballs_are_stored_by_their_content(reg, driver):
    data = b"a v2 tarball"
    key = f"pre/build_cache/linux-x-y/gcc-12/zlib-1.3/linux-x-y-gcc-12-zlib-1.3-{H}.spack"
    info = await put(reg, "cache", key, data)
    assert info.blob == core_digest(data)
    assert [p.path async for p in driver.walk(paths.BLOBS)] == [paths.blob(core_digest(data))]
    assert [p async for p in driver.walk(paths.OBJECT_DATA)] == []


async def test_without_a_classifier_no_key_is_content_addressed(driver):
    # Core knows no key shapes: a store without Spack keeps blob-shaped keys as they are.
    reg = build_registry(driver)
    info = await put(reg, "cache", blob_key(b"real"), b"fake")
    assert info.blob is None and info.data is not None
    assert [p async for p in driver.walk(paths.BLOBS)] == []


async def test_listing(reg):
    keys = ["a", "a/b", "a//b", "a b", "b/c/d", "b/c/e", "b/x", "\u00fcml", "z", "a-b", "a.b"]
    for k in keys:
        await put(reg, "lst", k, k.encode())
    got, _, page = await listing(reg, "lst")
    assert got == sorted(keys, key=lambda k: k.encode()) and not page.truncated
    got, prefixes, _ = await listing(reg, "lst", delimiter="/")
    assert got == ["a", "a b", "a-b", "a.b", "z", "\u00fcml"] and prefixes == ["a/", "b/"]
    got, prefixes, _ = await listing(reg, "lst", prefix="b/", delimiter="/")
    assert got == ["b/x"] and prefixes == ["b/c/"]
    got, _, _ = await listing(reg, "lst", prefix="a")
    assert got == ["a", "a b", "a-b", "a.b", "a//b", "a/b"]
    got, _, _ = await listing(reg, "lst", start_after="a/b")
    assert got == ["b/c/d", "b/c/e", "b/x", "z", "\u00fcml"]
    # Pages of 2, with and without a delimiter, reassemble the whole listing.
    for delimiter in ("", "/"):
        seen, token = [], None
        while True:
            got, prefixes, page = await listing(reg, "lst", delimiter=delimiter, max_keys=2,
                                                token=token)
            seen += got + prefixes
            assert len(got + prefixes) <= 2
            if not page.truncated:
                break
            token = page.next_token
        full, prefixes, _ = await listing(reg, "lst", delimiter=delimiter)
        assert sorted(seen) == sorted(full + prefixes)
    with pytest.raises(ObjectError):
        await listing(reg, "lst", token="!!!")
    with pytest.raises(ObjectError) as exc:
        await listing(reg, "nosuch")
    assert exc.value.s3_code == "NoSuchBucket"
    assert parse_token(make_token("a/b", True)) == ("a/b", True)


async def test_multipart(reg, driver):
    objects = reg.objects
    await objects.create_bucket("mp1")
    upload = await objects.create_multipart("mp1", "big", "application/x-tar")
    parts = [bytes([i]) * (5 * MiB) for i in range(3)] + [b"tail"]
    etags = {}
    for n in (4, 2, 1, 3):  # out of order
        etags[n] = await objects.upload_part("mp1", "big", upload, n, chunks(parts[n - 1]),
                                             Checks(len(parts[n - 1])))
    with pytest.raises(ObjectError) as exc:
        await objects.complete_multipart("mp1", "big", upload, [(2, etags[2]), (1, etags[1])])
    assert exc.value.s3_code == "InvalidPartOrder"
    with pytest.raises(ObjectError) as exc:
        await objects.complete_multipart("mp1", "big", upload, [(1, etags[1]), (5, "x")])
    assert exc.value.s3_code == "InvalidPart"
    with pytest.raises(ObjectError) as exc:
        await objects.complete_multipart("mp1", "big", upload, [(1, etags[2])])
    assert exc.value.s3_code == "InvalidPart"
    with pytest.raises(ObjectError) as exc:
        await objects.complete_multipart("mp1", "big", upload, [(4, etags[4]), (5, "x")])
    assert exc.value.s3_code in ("InvalidPart", "EntityTooSmall")
    info = await objects.complete_multipart("mp1", "big", upload,
                                            [(n, f'"{etags[n]}"') for n in range(1, 5)])
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert info.etag == hashlib.md5(md5s).hexdigest() + "-4"
    assert info.content_type == "application/x-tar"
    assert await read_all(await objects.serve("mp1", "big")) == b"".join(parts)
    assert [p async for p in driver.walk(paths.MULTIPART)] == []
    with pytest.raises(ObjectError) as exc:
        await objects.abort_multipart("mp1", "big", upload)
    assert exc.value.s3_code == "NoSuchUpload"


async def test_multipart_small_parts_and_blob_keys(reg, driver):
    objects = reg.objects
    data = b"x" * 100
    key = blob_key(data)
    upload = await objects.create_multipart("mp2", key, None)
    e1 = await objects.upload_part("mp2", key, upload, 1, chunks(data[:50]), Checks(50))
    e2 = await objects.upload_part("mp2", key, upload, 2, chunks(data[50:]), Checks(50))
    with pytest.raises(ObjectError) as exc:
        await objects.complete_multipart("mp2", key, upload, [(1, e1), (2, e2)])
    assert exc.value.s3_code == "EntityTooSmall"
    with pytest.raises(ObjectError) as exc:  # half the bytes: not what the key names
        await objects.complete_multipart("mp2", key, upload, [(1, e1)])
    assert exc.value.s3_code == "BadDigest"
    assert [p async for p in driver.walk(paths.OBJECTS)] == []
    assert [p async for p in driver.walk(paths.OBJECT_DATA)] == []
    assert [p async for p in driver.walk(paths.BLOBS)] == []
    upload = await objects.create_multipart("mp2", key, None)
    e1 = await objects.upload_part("mp2", key, upload, 1, chunks(data), Checks(100))
    info = await objects.complete_multipart("mp2", key, upload, [(1, e1)])
    assert info.blob == core_digest(data)
    assert [p.path async for p in driver.walk(paths.BLOBS)] == [paths.blob(core_digest(data))]


async def test_content_md5_accepted(reg):
    data = b"hello"
    md5 = base64.b64decode(base64.b64encode(hashlib.md5(data).digest()))
    assert (await put(reg, "okb", "k", data, md5=md5)).size == 5


async def test_stale_multipart_uploads_are_purged(reg, driver):
    upload = await reg.objects.create_multipart("mp3", "k", None)
    await reg.objects.upload_part("mp3", "k", upload, 1, chunks(b"x"), Checks(1))
    assert await reg.objects.purge_stale_uploads(3600) == 0
    assert await reg.objects.purge_stale_uploads(-1) == 1
    assert [p async for p in driver.walk(paths.MULTIPART)] == []
    with pytest.raises(ObjectError) as exc:
        await reg.objects.abort_multipart("mp3", "k", upload)
    assert exc.value.s3_code == "NoSuchUpload"
