"""The S3 side of a Spack build cache, as a decorator of the object service.

Spack pushes a classic cache through the S3 endpoint as blobs (content
addressed, already in the blob store OCI layers use) and then one small
document per spec: a layout v3 spec manifest, or a v2 `.spec.json[.sig]`.
That document is read before it is stored: a spec whose manifest names blobs
that are not there, or whose spec file is not a spec, is refused with an S3
error and nothing is kept; a good one becomes a record of the cache (durable
before the PUT is answered) and its OCI image is made in the background.

Index keys (`v3/manifests/index/index.manifest.json`, `build_cache/index.json`
and `.hash`) read through S3 are the server's index, written over whatever a
client's `update-index` put there when they are read.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator

from registry.core.access import NOBODY, Caller
from registry.core.decorators import ObjectsDecorator
from registry.core.errors import ObjectError
from registry.core.grammar import Digest
from registry.core.mounts import Mounts
from registry.core.protocols import Blobs, Objects
from registry.core.types import Checks, ObjectInfo, ObjectPlan
from registry.spack import synth
from registry.spack.gunzip import NotGzip
from registry.spack.layout import (
    INDEX_KINDS,
    SPEC_KINDS,
    ClassicPath,
    blob_path,
    classify,
    split_key,
)
from registry.spack.oci_bridge import NO_IMAGE, SpackManifests, makes_image
from registry.spack.service import SpackCaches
from registry.spack.specs import SPEC_MAX_BYTES, InvalidSpec, SpecDoc, SpecRecord

# Roots waiting for a dependency before their image is made in the background.
WAITING_MAX = 10_000
log = logging.getLogger("registry.spack")

DOC_MAX = 1 << 20  # a spec manifest or spec file as uploaded (signed, maybe gzipped)
PGP_SIGNED = b"-----BEGIN PGP SIGNED MESSAGE-----"


def invalid(message: str) -> ObjectError:
    return ObjectError("InvalidArgument", message, 400)


def clear_text(data: bytes) -> bytes:
    """The signed text of a clearsigned document (spack's extract_json_from_clearsig):
    between the armor headers' blank line and the signature; the document itself
    when it is not signed."""
    if not data.startswith(PGP_SIGNED):
        return data
    _, sep, rest = data.partition(b"\n\n")
    if not sep:
        _, sep, rest = data.partition(b"\r\n\r\n")
    body, sep2, _ = rest.partition(b"-----BEGIN PGP SIGNATURE-----")
    if not sep or not sep2:
        raise invalid("a clearsigned document without its signature")
    # Dash-escaped lines ("- -----") are the only escaping clearsigning does.
    lines = [line[2:] if line.startswith(b"- ") else line for line in body.splitlines()]
    return b"\n".join(lines)


def _json(data: bytes, what: str) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise invalid(f"the {what} is not valid JSON") from None


async def _collect(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise ObjectError("EntityTooLarge",
                              f"a spack spec document is at most {limit} bytes")
    return bytes(buf)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _inflate(data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(data, SPEC_MAX_BYTES + 1)
    except zlib.error:
        raise invalid("the spec file is not valid gzip") from None
    if len(out) > SPEC_MAX_BYTES:
        raise invalid("the spec file is too large")
    return out


class SpackObjects(ObjectsDecorator):
    """Objects (core.protocols) with the spack build caches they hold kept current."""

    def __init__(self, inner: Objects, blobs: Blobs, caches: SpackCaches,
                 manifests: SpackManifests, mounts: Mounts) -> None:
        super().__init__(inner)
        self.blobs = blobs
        self.mounts = mounts
        self.caches = caches
        self.manifests = manifests
        self._tasks: set[asyncio.Task] = set()
        # (cache, missing dependency hash) -> records whose image waits for it
        self._waiting: dict[tuple[str, str], list[SpecRecord]] = {}

    # -- writes ------------------------------------------------------------------

    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes], checks: Checks,
                  content_type: str | None = None, caller: Caller = NOBODY) -> ObjectInfo:
        where = split_key(bucket, key)
        if where is None:
            return await self.inner.put(bucket, key, chunks, checks, content_type, caller)
        cache, rel = where
        path = classify(rel)
        if path.kind not in SPEC_KINDS:
            info = await self.inner.put(bucket, key, chunks, checks, content_type, caller)
            await self._arrived(cache, info)
            return info
        data = await _collect(chunks, DOC_MAX)
        record = await self.record_of(key, path, data, cache, caller)
        info = await self.inner.put(bucket, key, _once(data), checks, content_type, caller)
        await self._added(cache, record)
        return info

    async def complete_multipart(self, bucket: str, key: str, upload_id: str,
                                 parts: list[tuple[int, str]],
                                 caller: Caller = NOBODY) -> ObjectInfo:
        info = await self.inner.complete_multipart(bucket, key, upload_id, parts, caller)
        where = split_key(bucket, key)
        if where is None:
            return info
        cache, rel = where
        if classify(rel).kind not in SPEC_KINDS:
            await self._arrived(cache, info)
            return info
        try:
            if info.size > DOC_MAX:
                raise ObjectError("EntityTooLarge", "a spack spec document is too large")
            plan = await self.inner.serve(bucket, key)
            data = await _collect(_plan_chunks(plan), DOC_MAX)
            record = await self.record_of(key, classify(rel), data, cache, caller)
        except BaseException:
            await self.inner.delete(bucket, key)  # nothing half-visible
            raise
        await self._added(cache, record)
        return info

    async def _arrived(self, cache: str, info: ObjectInfo) -> None:
        """A content-addressed object (a tarball, a v3 spec file) is in the cache
        from the moment its bytes arrive: its spec document, pushed next, names it."""
        if info.blob is not None:
            await self.mounts.arrived(cache, info.blob, info.size)

    async def delete(self, bucket: str, key: str) -> bool:
        existed = await self.inner.delete(bucket, key)
        where = split_key(bucket, key)
        if where is not None:
            path = classify(where[1])
            if path.kind in SPEC_KINDS and path.hash is not None:
                record = await self.caches.record(where[0], path.hash)
                if record is not None and record.key == key:
                    await self.caches.remove(where[0], path.hash)
        return existed

    async def settle(self) -> None:
        """Wait for the OCI images being made in the background (a CLI import
        must not close the store under them)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _added(self, cache: str, record: SpecRecord) -> None:
        await self.caches.add(cache, record)
        # Spack pushes a DAG's specs in any order: the images of roots that
        # waited for this one can now be made whole.
        for root in [record, *self._waiting.pop((cache, record.hash), [])]:
            if not makes_image(root):
                continue
            task = asyncio.get_running_loop().create_task(self._image(cache, root))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _image(self, cache: str, record: SpecRecord) -> None:
        for node in record.spec.runtime_deps():
            if await self.caches.record(cache, node.hash) is None:
                if len(self._waiting) >= WAITING_MAX:  # memory bound: made on pull then
                    self._waiting.clear()
                self._waiting.setdefault((cache, node.hash), []).append(record)
                return
        try:
            await self.manifests.materialize(cache, record)
        except NotGzip as exc:  # a tarball that is no image: the classic views serve it
            log.warning("spack: %s in %s has no OCI image: %s", record.hash, cache, exc)
        except Exception:  # made on first pull instead
            log.warning("spack: could not make the OCI image of %s in %s", record.hash,
                        cache, exc_info=True)

    async def record_of(self, key: str, path: ClassicPath, data: bytes, cache: str,
                        caller: Caller) -> SpecRecord:
        """The record a spec document pushed at `key` into `cache` describes, its
        blobs linked into the cache by the mount rule (core/mounts.py): a blob the
        caller pushed into the cache, or one it may pull from where it is."""
        text = clear_text(data)
        # S3 push on a bucket makes OCI tags in its caches only for a caller who may
        # push there over OCI (docs/security.md); the classic views serve it anyway.
        extra = {} if caller.may_push(cache) else {NO_IMAGE: True}
        if path.kind == "spec3":
            entries = _entries(_json(text, "spec manifest"))
            tar_entry = _pick(entries, "tar")
            spec_entry = _pick(entries, "spec")
            for entry in (tar_entry, spec_entry):
                await self._check_blob(cache, entry, caller)
            spec_digest = Digest("sha256", spec_entry["checksum"])
            raw = await self.blobs.read(spec_digest, SPEC_MAX_BYTES + 1)
            spec = _spec(_inflate(raw))
            record = SpecRecord(spec, Digest("sha256", tar_entry["checksum"]),
                                tar_entry["contentLength"], "v3", spec_digest,
                                spec_entry["contentLength"], key, pushed=time.time(),
                                extra=extra)
        else:
            doc = _json(_inflate(text), "spec file")
            spec = _spec_doc(doc)
            checksum = doc.get("binary_cache_checksum") if isinstance(doc, dict) else None
            if not isinstance(checksum, dict) or checksum.get("hash_algorithm") != "sha256":
                raise invalid("the spec file has no sha256 binary_cache_checksum")
            try:
                tarball = Digest.parse(f"sha256:{checksum.get('hash')}")
            except Exception:
                raise invalid("the spec file's binary_cache_checksum is malformed") from None
            # The .spack object was stored in the blob store by its digest
            # (layout.key_class) and linked into the cache; spack pushes it before its
            # spec file.
            size = await self.mounts.link(cache, tarball, caller)
            if size is None:
                raise invalid(f"the spec's tarball {tarball} is not in the cache; push "
                              "the .spack file before its spec file")
            spec_file = synth.spec_file_v3(SpecRecord(spec, tarball, size, "v2"))
            spec_blob = await self.caches.store_blob(cache, spec_file)
            record = SpecRecord(spec, tarball, size, "v2", spec_blob, len(spec_file), key,
                                pushed=time.time(), extra=extra)
        if path.hash is not None and record.hash != path.hash:
            raise invalid("the key names another spec than the document")
        return record

    async def _check_blob(self, cache: str, entry: dict, caller: Caller) -> None:
        digest = Digest("sha256", entry["checksum"])
        size = await self.mounts.link(cache, digest, caller)
        if size is None:  # refused or nowhere: the same answer
            raise invalid(f"the manifest names a blob that is not in the cache: {digest}")
        if size != entry["contentLength"]:
            raise invalid(f"the manifest gives blob {digest} another size than it has")

    # -- reads -------------------------------------------------------------------

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        await self._refresh_index(bucket, key)
        return await self.inner.head(bucket, key)

    async def serve(self, bucket: str, key: str, range_header: str | None = None,
                    with_body: bool = True, if_match: str | None = None,
                    if_none_match: str | None = None) -> ObjectPlan:
        await self._refresh_index(bucket, key)
        return await self.inner.serve(bucket, key, range_header, with_body, if_match,
                                      if_none_match)

    async def _refresh_index(self, bucket: str, key: str) -> None:
        """Point an index key at the server's index before it is read."""
        where = split_key(bucket, key)
        if where is None:
            return
        cache, rel = where
        kind = classify(rel).kind
        if kind not in INDEX_KINDS:
            return
        rendered = await self.caches.index(cache, "v3" if kind == "index3" else "v2")
        if rendered is None:
            return
        if kind == "index2":
            digest, size = rendered.digest, rendered.size
        else:
            data = (synth.index_manifest_v3(rendered.fmt, rendered.digest, rendered.size)
                    if kind == "index3" else rendered.digest.hex.encode())
            digest, size = await self.caches.store_blob(cache, data), len(data)
        if kind == "index3":
            # The manifest names the index blob by its key: give that key an entry,
            # or a client reading the index over S3 finds NoSuchKey.
            blob_key = key[: len(key) - len(rel)] + blob_path(rendered.digest)
            await self._point(bucket, blob_key, rendered.digest, rendered.size,
                              "application/json")
        await self._point(bucket, key, digest, size,
                          "application/json" if kind != "hash2" else "text/plain")

    async def _point(self, bucket: str, key: str, digest: Digest, size: int,
                     content_type: str) -> None:
        """Make `key` an entry of blob `digest`, unless it is one already."""
        try:
            current = await self.inner.head(bucket, key)
            if current.blob == digest:
                return
        except ObjectError:
            pass
        await self.inner.put_blob_entry(bucket, key, digest, size, content_type)


async def _plan_chunks(plan) -> AsyncIterator[bytes]:
    try:
        body = plan.body
        if body is None:
            return
        if hasattr(body, "chunks"):
            async for chunk in body.chunks:
                yield chunk
            return
        fd = plan.take_fd()
        import os
        try:
            while True:
                chunk = await asyncio.to_thread(os.read, fd, 1 << 16)
                if not chunk:
                    return
                yield chunk
        finally:
            os.close(fd)
    finally:
        await plan.close()


def _entries(doc: object) -> list[dict]:
    try:
        return synth.parse_manifest_v3(doc)
    except (ValueError, Exception) as exc:
        raise invalid(f"not a spack layout v3 spec manifest: {exc}") from None


def _pick(entries: list[dict], what: str) -> dict:
    prefix = "application/vnd.spack.install." if what == "tar" else "application/vnd.spack.spec."
    found = [e for e in entries if e["mediaType"].startswith(prefix)]
    if len(found) != 1:
        raise invalid(f"the spec manifest must list one {what} blob")
    return found[0]


def _spec(raw: bytes) -> SpecDoc:
    return _spec_doc(_json(raw, "spec file"))


def _spec_doc(doc: object) -> SpecDoc:
    try:
        return SpecDoc.parse(doc)
    except InvalidSpec as exc:
        raise invalid(f"not a spack spec: {exc}") from None


__all__ = ["SpackObjects", "clear_text", "gzip"]
