"""S3 driver: the storage protocol over any S3-compatible object store.

AWS S3, Ceph RGW, MinIO and SeaweedFS all work; `[storage] driver = "s3"`
selects it (keys: bucket, prefix, endpoint_url, region, access_key,
secret_key, part_size, path_style, redirect; credentials fall back to the
usual AWS environment variables and files). The driver keeps nothing in memory
between requests: every answer comes from the store, so
replicas can share one bucket. What each replica keeps besides (its SQLite
index, the core's caches) is derived and catches up with the others' writes
(docs/scale-out.md).

Layout: driver path `p` is object `<prefix>/p`. A directory is a key prefix.
Files written through `writer()` live as segments until committed or moved
(see s3_parts), which lets an upload begun on one replica continue on
another. A plain object always wins over leftover segments of the same path;
`walk`, `list` and `stat` show a segmented file as one file with the size of
its contiguous segments, and never show segments or directory markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from botocore.exceptions import ClientError

from registry.config import StorageConfig
from registry.storage.driver import (
    FileInfo,
    PathNotFound,
    StorageError,
    StorageUnavailable,
    check_path,
)
from registry.storage.s3_client import TRANSIENT, S3Client, error_code
from registry.storage.s3_parts import (
    MIN_PART,
    SEG,
    Segment,
    Source,
    compose,
    delete_keys,
    list_keys,
    list_segments,
    seg_key,
    seg_prefix,
)
from registry.storage.s3_writer import S3Writer
from registry.storage.walk import Entry, sort_entries, walk_tree

log = logging.getLogger("registry.storage.s3")

# Multipart uploads older than this are abandoned (a crashed writer): abort them.
UPLOAD_MAX_AGE_S = 24 * 3600.0
JANITOR_EVERY_S = 3600.0
PRESIGN_EXPIRES_S = 900
# Keys per ListObjectsV2 page in walk (S3's maximum; tests make pages small).
WALK_PAGE = 1000


class S3Driver:
    """The storage protocol over one bucket (and key prefix) of an S3-compatible store."""

    name = "s3"

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None,
                 region: str = "us-east-1", access_key: str | None = None,
                 secret_key: str | None = None, part_size: int = 16 << 20,
                 path_style: bool = True, redirect: bool = False, janitor: bool = True,
                 **client_options: Any) -> None:
        self.client = S3Client(bucket, endpoint_url=endpoint_url, region=region,
                               access_key=access_key, secret_key=secret_key,
                               path_style=path_style, **client_options)
        clean = prefix.strip("/")
        self.prefix = f"{clean}/" if clean else ""
        self.part_size = max(int(part_size), MIN_PART)
        self.redirect = redirect
        self.walk_page = WALK_PAGE
        self._janitor_enabled = janitor
        self._janitor: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, config: StorageConfig) -> S3Driver:
        return cls(config.bucket, prefix=config.prefix, endpoint_url=config.endpoint_url or None,
                   region=config.region, access_key=config.access_key or None,
                   secret_key=config.secret_key or None, part_size=config.part_size,
                   path_style=config.path_style, redirect=config.redirect)

    # -- helpers -------------------------------------------------------------

    def key(self, path: str) -> str:
        return self.prefix + check_path(path, self.name)

    def _dir_prefix(self, path: str) -> str:
        return self.prefix if path == "" else self.key(path) + "/"

    async def segments(self, path: str) -> tuple[list[Segment], list[str]]:
        return await list_segments(self.client, self.key(path), path)

    def _start_janitor(self) -> None:
        if self._janitor is None and self._janitor_enabled:
            self._janitor = asyncio.get_running_loop().create_task(self._janitor_loop())

    async def purge_uploads(self, older_than: float = UPLOAD_MAX_AGE_S) -> int:
        """Abort multipart uploads begun more than `older_than` seconds ago."""
        return await self.client.abort_uploads(self.prefix, older_than)

    async def _janitor_loop(self) -> None:
        await asyncio.sleep(30)
        while True:
            try:
                n = await self.purge_uploads()
                if n:
                    log.info("aborted %d abandoned multipart uploads", n)
            except (StorageError, OSError) as exc:
                log.warning("multipart janitor: %s", exc)
            await asyncio.sleep(JANITOR_EVERY_S)

    # -- whole objects -------------------------------------------------------

    async def get_content(self, path: str, max_bytes: int | None = None) -> bytes:
        key = self.key(path)
        s3 = await self.client.client()

        async def fetch() -> bytes:
            r = await s3.get_object(Bucket=self.client.bucket, Key=key)
            async with r["Body"] as body:
                if max_bytes is not None and r["ContentLength"] > max_bytes:
                    raise StorageError(f"content larger than {max_bytes} bytes", self.name, path)
                got: bytes = await body.read()
                return got

        try:
            return await self.client.retrying("get_object", path, fetch,
                                              self.client.transfer_timeout)
        except PathNotFound:
            segs, _ = await self.segments(path)
            if not segs:
                raise
        if max_bytes is not None and segs[-1].end > max_bytes:
            raise StorageError(f"content larger than {max_bytes} bytes", self.name, path)
        return b"".join([c async for c in self._read_segments(path, segs, 0, None, 1 << 20)])

    async def put_content(self, path: str, data: bytes, private: bool = False) -> None:
        # No file modes on S3: the bucket's credentials are the access control.
        await self.client.call("put_object", path, Key=self.key(path), Body=bytes(data))

    # -- streaming reads -----------------------------------------------------

    async def _open(self, key: str, path: str, start: int, end: int | None) -> Any:
        """A GET body from `start` (to `end`, exclusive), or None past the end."""
        s3 = await self.client.client()
        kw: dict[str, Any] = {"Bucket": self.client.bucket, "Key": key}
        if start or end is not None:
            kw["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))

        async def get() -> Any:
            try:
                return (await s3.get_object(**kw))["Body"]
            except ClientError as exc:
                code, status = error_code(exc)
                if status == 416 or code == "InvalidRange":
                    return None
                raise

        return await self.client.retrying("get_object", path, get)

    async def _stream(self, key: str, path: str, start: int, length: int | None,
                      chunk_size: int) -> AsyncGenerator[bytes, None]:
        """Stream one object's range; a broken connection resumes where it stopped."""
        pos, end = start, (None if length is None else start + length)
        failures = 0
        body = await self._open(key, path, pos, end)
        try:
            while body is not None and (end is None or pos < end):
                n = chunk_size if end is None else min(chunk_size, end - pos)
                try:
                    # asyncio.timeout, not wait_for: see S3Client._attempts.
                    async with asyncio.timeout(self.client.transfer_timeout):
                        chunk = await body.read(n)
                except TRANSIENT as exc:
                    body.close()
                    body = None
                    failures += 1
                    if failures >= self.client.attempts:
                        raise StorageUnavailable(f"read failed: {exc!r}", self.name,
                                                 path) from None
                    body = await self._open(key, path, pos, end)
                    continue
                if not chunk:
                    break
                pos += len(chunk)
                yield chunk
        finally:
            if body is not None:
                body.close()

    async def _read_segments(self, path: str, segs: list[Segment], offset: int,
                             length: int | None, chunk_size: int) -> AsyncIterator[bytes]:
        end = segs[-1].end if segs else 0
        if length is not None:
            end = min(end, offset + length)
        for seg in segs:
            if seg.end <= offset or seg.start >= end or seg.size == 0:
                continue
            lo = max(offset, seg.start) - seg.start
            hi = min(end, seg.end) - seg.start
            async for chunk in self._stream(seg.key, path, lo, hi - lo, chunk_size):
                yield chunk

    async def reader(self, path: str, offset: int = 0, length: int | None = None,
                     chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        key = self.key(path)
        if length == 0:
            await self.stat(path)
            return
        try:
            stream = self._stream(key, path, offset, length, chunk_size)
            first = await anext(stream, None)
        except PathNotFound:
            segs, _ = await self.segments(path)
            if not segs:
                raise
            async for chunk in self._read_segments(path, segs, offset, length, chunk_size):
                yield chunk
            return
        try:
            if first is not None:
                yield first
                async for chunk in stream:
                    yield chunk
        finally:
            await stream.aclose()

    # -- writes --------------------------------------------------------------

    async def writer(self, path: str, append: bool = False) -> S3Writer:
        key = self.key(path)
        self._start_janitor()
        segs, stale = await self.segments(path)
        if not append:
            if segs or stale:
                await self.drop_segments(path, [s.key for s in segs] + stale)
            return S3Writer(self, path, key, 0, has_segments=False)
        if stale:
            await delete_keys(self.client, stale, path)
        if segs:
            return S3Writer(self, path, key, segs[-1].end, has_segments=True)
        try:
            head = await self.client.call("head_object", path, Key=key)
        except PathNotFound:
            return S3Writer(self, path, key, 0, has_segments=False)
        # Appending to a committed object: it becomes the file's first segment.
        size = int(head["ContentLength"])
        await compose(self.client, [Source(key, 0, size, size)], seg_key(key, 0), path,
                      self.part_size)
        await self.client.call("delete_object", path, Key=key)
        return S3Writer(self, path, key, size, has_segments=True)

    async def drop_segments(self, path: str, keys: list[str] | None = None) -> None:
        if keys is None:
            segs, stale = await self.segments(path)
            keys = [s.key for s in segs] + stale
        await self._remove(path, keys, {seg_prefix(self.key(path))}, prune=False)
        await self.client.abort_uploads(seg_prefix(self.key(path)))

    async def truncate_segments(self, path: str, size: int) -> None:
        """Cut a segmented file to `size` bytes (the file keeps existing)."""
        segs, stale = await self.segments(path)
        drop = list(stale)
        for seg in segs:
            if seg.start >= size and not (seg.start == 0 and size == 0):
                drop.append(seg.key)
            elif seg.end > size:
                await compose(self.client, [Source(seg.key, 0, size - seg.start, seg.size)],
                              seg.key, path, self.part_size)
        if drop:
            await delete_keys(self.client, drop, path)
        if not segs:
            await self.client.call("put_object", path, Key=seg_key(self.key(path), 0), Body=b"")

    async def materialize(self, path: str) -> None:
        """Turn a segmented file into one plain object at its own key."""
        segs, stale = await self.segments(path)
        if not segs:
            raise PathNotFound("path not found", self.name, path)
        await compose(self.client, [s.source() for s in segs], self.key(path), path,
                      self.part_size)
        await self._remove(path, [s.key for s in segs] + stale, {seg_prefix(self.key(path))},
                           prune=False)

    async def _sources(self, path: str) -> list[Source]:
        """The whole file at path as compose sources: its object, or its segments."""
        key = self.key(path)
        try:
            head = await self.client.call("head_object", path, Key=key)
        except PathNotFound:
            segs, _ = await self.segments(path)
            if not segs:
                raise
            return [s.source() for s in segs]
        size = int(head["ContentLength"])
        return [Source(key, 0, size, size)]

    async def compose(self, dst: str, sources: list[str]) -> int:
        # Every source is looked up before anything is written, so a missing one
        # fails cleanly; the result appears at once (put, copy, or a completed
        # multipart upload), never a prefix of it.
        parts = [part for src in sources for part in await self._sources(src)]
        await compose(self.client, parts, self.key(dst), dst, self.part_size)
        return sum(p.length for p in parts)

    def walk(self, path: str, start_after: str = "") -> AsyncIterator[FileInfo]:
        # One delimited listing per directory (see registry.storage.walk): stores
        # differ in their flat listing order, and this gives S3's order on all.
        if path:
            self.key(path)
        return walk_tree(path, start_after, self._scan)

    async def _scan(self, path: str) -> list[Entry]:
        """One directory's files and subdirectories, without segments (a file
        in segments is one entry with its size) or directory markers."""
        base = self._dir_prefix(path)
        objects, prefixes = await list_keys(self.client, base, path, delimiter="/",
                                            page=self.walk_page)
        files = {}
        for obj in objects:
            name = obj["Key"][len(base):]
            if name and not name.endswith("/"):  # not a directory marker
                files[name] = (name, False, int(obj["Size"]), obj["LastModified"].timestamp())
        entries = list(files.values())
        for prefix in prefixes:
            name = prefix[len(base):-1]
            if not name.endswith(SEG):
                entries.append((name, True, 0, 0.0))
            elif name[:-len(SEG)] not in files:  # a plain object wins over segments
                name = name[:-len(SEG)]
                segs, _ = await self.segments(f"{path}/{name}" if path else name)
                if segs:
                    entries.append((name, False, segs[-1].end, max(s.mtime for s in segs)))
        return sort_entries(entries)

    async def move(self, src: str, dst: str) -> None:
        skey, dkey = self.key(src), self.key(dst)
        try:
            head = await self.client.call("head_object", src, Key=skey)
        except PathNotFound:
            segs, stale = await self.segments(src)
            if not segs:
                raise
            await compose(self.client, [s.source() for s in segs], dkey, dst, self.part_size)
            await self._remove(src, [s.key for s in segs] + stale, {seg_prefix(skey)})
            return
        size = int(head["ContentLength"])
        await compose(self.client, [Source(skey, 0, size, size)], dkey, dst, self.part_size)
        await self._remove(src, [skey], set())

    async def delete(self, path: str) -> None:
        key = self.key(path)
        objects, _ = await list_keys(self.client, key, path)
        keys = [o["Key"] for o in objects
                if o["Key"] == key or o["Key"].startswith((key + "/", key + SEG + "/"))]
        if not keys:
            raise PathNotFound("path not found", self.name, path)
        gone = {key + "/", seg_prefix(key)}
        for k in keys:
            gone.update(k[:i + 1] for i in range(len(key), len(k)) if k[i] == "/")
        await self._remove(path, keys, gone)
        if any(SEG + "/" in k for k in keys):
            await self.client.abort_uploads(key)

    async def _remove(self, path: str, keys: list[str], gone_dirs: set[str],
                      prune: bool = True) -> None:
        """Delete keys, then the directory markers some stores (SeaweedFS) keep for
        directories that are now empty: `gone_dirs`, and, walking up, each ancestor
        of `path` left empty, so emptied directories do not show in listings. On
        SeaweedFS deleting the marker of a directory that is not empty (a concurrent
        write) leaves it alone; on AWS S3 markers do not exist and this only lists."""
        await delete_keys(self.client, keys, path)
        if gone_dirs:
            await delete_keys(self.client, sorted(gone_dirs, key=len, reverse=True), path)
        if not prune:
            return
        parts = path.split("/")[:-1]
        ancestors = [self.prefix + "/".join(parts[:i]) + "/" for i in range(len(parts), 0, -1)]
        if self.prefix:
            ancestors.append(self.prefix)
        for anc in ancestors:
            page = await self.client.call("list_objects_v2", path, Prefix=anc, Delimiter="/",
                                          MaxKeys=2)
            found = [o["Key"] for o in page.get("Contents", []) or []]
            found += [p["Prefix"] for p in page.get("CommonPrefixes", []) or []]
            if any(k != anc for k in found):
                return
            if found:
                await self.client.call("delete_object", path, Key=anc)

    # -- metadata ------------------------------------------------------------

    async def stat(self, path: str) -> FileInfo:
        key = self.key(path)
        try:
            head = await self.client.call("head_object", path, Key=key)
            return FileInfo(path, int(head["ContentLength"]),
                            head["LastModified"].timestamp(), False)
        except PathNotFound:
            pass
        page = await self.client.call("list_objects_v2", path, Prefix=key, Delimiter="/")
        prefixes = {p["Prefix"] for p in page.get("CommonPrefixes", []) or []}
        if seg_prefix(key) in prefixes:
            segs, _ = await self.segments(path)
            if segs:
                return FileInfo(path, segs[-1].end, max(s.mtime for s in segs), False)
        if key + "/" not in prefixes and page.get("IsTruncated"):
            page = await self.client.call("list_objects_v2", path, Prefix=key + "/", MaxKeys=1)
            if page.get("KeyCount", 0) or page.get("Contents"):
                prefixes.add(key + "/")
        if key + "/" in prefixes:
            return FileInfo(path, 0, 0.0, True)
        raise PathNotFound("path not found", self.name, path)

    async def list(self, path: str) -> list[str]:
        base = self._dir_prefix(path)
        objects, prefixes = await list_keys(self.client, base, path, delimiter="/")
        # Keys ending in "/" are directory markers (SeaweedFS shows empty directories).
        names = {o["Key"][len(base):] for o in objects if not o["Key"].endswith("/")}
        for p in prefixes:
            name = p[len(base):-1]
            names.add(name[:-len(SEG)] if name.endswith(SEG) else name)
        names.discard("")
        if not names:
            raise PathNotFound("path not found", self.name, path)
        return sorted(names)

    async def redirect_url(self, path: str, method: str = "GET") -> str | None:
        if not self.redirect:
            return None
        s3 = await self.client.client()
        op = "head_object" if method == "HEAD" else "get_object"
        url: str = await s3.generate_presigned_url(
            op, Params={"Bucket": self.client.bucket, "Key": self.key(path)},
            ExpiresIn=PRESIGN_EXPIRES_S)
        return url

    def local_path(self, path: str) -> str | None:
        return None

    async def close(self) -> None:
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
            self._janitor = None
        await self.client.close()
