"""Objects of the S3-compatible API: buckets, keys and their bytes, over the driver.

Layout (storage/paths.py):

    buckets/<bucket>                     marker: the bucket exists
    objects/<bucket>/<encoded key>       the object's entry: a small JSON document
    objectdata/<bucket>/<2 hex>/<id>     the bytes of an object that is not a blob
    blobs/sha256/<2 hex>/<hex>           the bytes of a content-addressed object

An entry holds what S3 answers about an object (size, ETag, Last-Modified,
Content-Type, its key) and where its bytes are: a `data` id, fresh for every
write, or a `blob` digest. Which keys are content-addressed is not core's to
know: a classifier injected by the factory says (core.object_keys; Spack's
blobs and v2 tarballs, from registry.spack.layout). Their bytes are verified
against the digest the key names, if it names one, and stored in the blob
store OCI layers use, so a tarball pushed over OCI and over S3 is stored once;
their entry only references the blob.

Writes are atomic and streamed: the body goes to a fresh data path (never
read by anyone before the entry names it) while being hashed on worker
threads, is checked, then the entry is replaced in one atomic put, and only
then are the bytes of the version it replaced deleted. A reader holding the
old entry may find its bytes gone: it reads the entry again. Two processes
replacing one key at once can leave the loser's bytes unreferenced (a later
sweep of `objectdata/` against the entries can collect them); never a
referenced one deleted.

A bucket exists once its marker does: CreateBucket writes it, and so does
the first write into a bucket (Spack never creates buckets). Buckets are
never deleted (DeleteBucket is not offered), so a positive answer is cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import uuid
import weakref
from collections.abc import AsyncIterator

from registry.core.errors import ObjectError, RangeUnsatisfiable
from registry.core.grammar import Digest, is_valid_bucket
from registry.core.object_keys import KeyClass, KeyClassifier, plain_keys
from registry.core.object_writes import bad_digest, stream_to
from registry.core.protocols import Blobs
from registry.core.ranges import Unsatisfiable, parse_range
from registry.core.serving import ByteStream, LocalFile
from registry.core.streaming import BLOCK
from registry.core.types import DEFAULT_TYPE, BucketInfo, Checks, ObjectInfo, ObjectPlan
from registry.storage import paths
from registry.storage.driver import Driver, PathNotFound

log = logging.getLogger("registry.objects")

# Entries are a few hundred bytes; anything larger is not one of ours.
ENTRY_MAX = 64 << 10
# Times a GET reads the entry again when an overwrite deleted the bytes under it.
READ_ATTEMPTS = 3


def entry_path(bucket: str, key: str) -> str:
    """The entry path of `key`, with the encoding's refusals in S3's words."""
    check_bucket(bucket)
    try:
        return paths.object_path(bucket, key)
    except paths.InvalidBucketName:
        raise ObjectError("InvalidBucketName", "the specified bucket is not valid") from None
    except paths.KeyTooLong:
        raise ObjectError("KeyTooLongError", "your key is too long") from None
    except paths.InvalidKey as exc:
        raise ObjectError("InvalidArgument", f"invalid object key: {exc}") from None


def check_bucket(bucket: str) -> str:
    """`bucket`, if S3 would accept its name (InvalidBucketName otherwise)."""
    if not is_valid_bucket(bucket):
        raise ObjectError("InvalidBucketName", "the specified bucket is not valid")
    return bucket


def new_id() -> str:
    return uuid.uuid4().hex


class ObjectStore:
    """Buckets and objects of the S3-compatible API (see the module docstring)."""

    def __init__(self, driver: Driver, blobs: Blobs,
                 keys: KeyClassifier = plain_keys) -> None:
        self.driver = driver
        self.blobs = blobs
        self.keys = keys
        self._buckets: set[str] = set()
        # Serialises replacing one key in this process, so that the bytes of the
        # version being replaced are deleted by exactly one writer.
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # -- buckets -------------------------------------------------------------

    async def bucket_exists(self, bucket: str) -> bool:
        check_bucket(bucket)
        if bucket in self._buckets:
            return True
        try:
            await self.driver.stat(paths.bucket_marker(bucket))
        except PathNotFound:
            return False
        self._buckets.add(bucket)
        return True

    async def create_bucket(self, bucket: str) -> bool:
        """Create `bucket` if it does not exist; True if this call created it."""
        if await self.bucket_exists(bucket):
            return False
        marker = json.dumps({"created": time.time()}).encode()
        await self.driver.put_content(paths.bucket_marker(bucket), marker)
        self._buckets.add(bucket)
        return True

    async def buckets(self) -> list[BucketInfo]:
        try:
            names = await self.driver.list(paths.buckets_dir())
        except PathNotFound:
            return []
        out = []
        for name in names:
            if not is_valid_bucket(name):
                continue  # written before S3's naming rules were applied: not a bucket
            try:
                info = await self.driver.stat(paths.bucket_marker(name))
            except (PathNotFound, paths.InvalidBucketName):
                continue  # removed meanwhile, or a stray name
            out.append(BucketInfo(name, info.mtime))
        return out

    async def _missing(self, bucket: str) -> ObjectError:
        if not await self.bucket_exists(bucket):
            return ObjectError("NoSuchBucket", "the specified bucket does not exist", 404)
        return ObjectError("NoSuchKey", "the specified key does not exist", 404)

    # -- reading -------------------------------------------------------------

    async def read_entry(self, path: str) -> ObjectInfo | None:
        try:
            return ObjectInfo.from_json(await self.driver.get_content(path, ENTRY_MAX))
        except PathNotFound:
            return None

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        info = await self.read_entry(entry_path(bucket, key))
        if info is None:
            raise await self._missing(bucket)
        return info

    def data_path(self, bucket: str, info: ObjectInfo) -> str:
        if info.blob is not None:
            return paths.blob(info.blob)
        return paths.object_data(bucket, info.data or "")

    async def serve(self, bucket: str, key: str, range_header: str | None = None,
                    with_body: bool = True, if_match: str | None = None,
                    if_none_match: str | None = None) -> ObjectPlan:
        """What to send for a GET (`with_body`) or HEAD of an object: 304 when
        `if_none_match` names its ETag, 412 when `if_match` does not, 416 for a
        range outside it; else the bytes, as an open local file or a stream."""
        for attempt in range(READ_ATTEMPTS):
            info = await self.head(bucket, key)
            if if_match is not None and not _etag_matches(if_match, info.etag):
                raise ObjectError("PreconditionFailed",
                                  "at least one of the preconditions did not hold", 412)
            if if_none_match is not None and _etag_matches(if_none_match, info.etag):
                return ObjectPlan(info, not_modified=True)
            try:
                rng = parse_range(range_header, info.size)
            except Unsatisfiable:
                raise RangeUnsatisfiable(info.size) from None
            plan = ObjectPlan(info, rng)
            if not with_body:
                return plan
            path = self.data_path(bucket, info)
            local = self.driver.local_path(path)
            if local is None:
                plan.body = ByteStream(self.driver.reader(path, plan.offset, plan.length))
                return plan
            try:
                fd = await asyncio.to_thread(os.open, local, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if attempt + 1 == READ_ATTEMPTS:
                    raise
                continue  # replaced meanwhile: the new entry names new bytes
            plan.body = LocalFile(fd)
            return plan
        raise AssertionError("unreachable")

    # -- writing -------------------------------------------------------------

    def key_class(self, key: str) -> KeyClass:
        """How the bytes of `key` are stored; InvalidArgument for a key the key
        grammar refuses (one that looks content-addressed but is not named so)."""
        kind = self.keys(key)
        if kind.refused is not None:
            raise ObjectError("InvalidArgument", f"invalid object key: {kind.refused}")
        return kind

    def _lock(self, bucket: str, key: str) -> asyncio.Lock:
        lock = self._locks.get((bucket, key))
        if lock is None:
            lock = self._locks[(bucket, key)] = asyncio.Lock()
        return lock

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes], checks: Checks,
                  content_type: str | None = None) -> ObjectInfo:
        """PutObject: stream the body to fresh bytes, check it, then publish it."""
        entry_path(bucket, key)  # a key we cannot store is refused before any byte
        await self.create_bucket(bucket)
        addressed = self.key_class(key).addressed
        data_id = new_id()
        written = await stream_to(self.driver, paths.object_data(bucket, data_id), chunks,
                                  checks, want_sha256=addressed, publish=not addressed)
        return await self.publish(bucket, key, data_id, written.size, written.md5.hex(),
                                  content_type, written.sha256)

    async def publish(self, bucket: str, key: str, data_id: str, size: int, etag: str,
                      content_type: str | None, sha256: str | None = None) -> ObjectInfo:
        """Make the whole, checked bytes at `object_data(bucket, data_id)` the
        object `key`: the bytes of a content-addressed key are verified against the
        digest it names, if any (`sha256` if known, else by reading the bytes), and
        moved into the blob store unless the blob is there already; then the entry
        is replaced."""
        path = entry_path(bucket, key)
        scratch = paths.object_data(bucket, data_id)
        kind = self.key_class(key)
        digest = kind.digest
        info = ObjectInfo(key, size, etag, time.time(), content_type or DEFAULT_TYPE,
                          data=data_id)
        if kind.addressed and digest is None:
            digest = Digest("sha256", sha256 or await self._sha256_of(scratch))
        if digest is not None:
            try:
                actual = sha256 or await self._sha256_of(scratch)
                if actual != digest.hex:
                    raise bad_digest("the content does not match the sha256 digest in its key")
                if await self.blobs.commit(digest, scratch):
                    scratch = ""
            finally:
                if scratch:
                    await self._drop(scratch)
            info = ObjectInfo(key, size, etag, info.modified, info.content_type, blob=digest)
        await self._replace(bucket, key, path, info)
        return info

    async def put_blob_entry(self, bucket: str, key: str, digest: Digest, size: int,
                             content_type: str | None = None) -> ObjectInfo:
        """Make `key` name a blob already in the blob store (a document the
        server made): the entry is replaced atomically, no bytes are copied."""
        path = entry_path(bucket, key)
        await self.create_bucket(bucket)
        info = ObjectInfo(key, size, digest.hex[:32], time.time(),
                          content_type or DEFAULT_TYPE, blob=digest)
        await self._replace(bucket, key, path, info)
        return info

    async def _sha256_of(self, path: str) -> str:
        hasher = hashlib.sha256()
        loop = asyncio.get_running_loop()
        async for chunk in self.driver.reader(path, chunk_size=BLOCK):
            await loop.run_in_executor(None, hasher.update, chunk)
        return hasher.hexdigest()

    async def _replace(self, bucket: str, key: str, path: str, info: ObjectInfo) -> None:
        async with self._lock(bucket, key):
            old = await self.read_entry(path)
            await self.driver.put_content(path, info.to_json())
            if old is not None and old.data and old.data != info.data:
                try:
                    await self._drop(paths.object_data(bucket, old.data))
                except Exception:  # the new version is published: that must not fail now
                    log.warning("could not delete replaced bytes of %s/%s", bucket, key,
                                exc_info=True)

    async def _drop(self, path: str) -> None:
        try:
            await self.driver.delete(path)
        except PathNotFound:
            pass

    async def delete(self, bucket: str, key: str) -> bool:
        """DeleteObject; False when there was no such object (S3 answers 204 all
        the same). A blob-backed object's blob stays: OCI may use it too."""
        path = entry_path(bucket, key)
        async with self._lock(bucket, key):
            old = await self.read_entry(path)
            if old is None:
                if not await self.bucket_exists(bucket):
                    raise await self._missing(bucket)
                return False
            await self._drop(path)
            if old.data:
                await self._drop(paths.object_data(bucket, old.data))
        return True


def _etag_matches(header: str, etag: str) -> bool:
    """An If-Match / If-None-Match list against an ETag (weak or strong, or *)."""
    for item in header.split(","):
        item = item.strip()
        if item == "*" or item.removeprefix("W/").strip('"') == etag:
            return True
    return False
