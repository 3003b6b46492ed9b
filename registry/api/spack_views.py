"""The classic mirror views of every Spack build cache: `/spack/<cache>/...` in
layouts v3 (spack >= 1.0) and v2 (spack 0.2x), read-only, over plain HTTPS.

Paths are classified by their shape (spack.layout) and answered from the
cache's records: what spack itself wrote through S3 is served unchanged (it
may be signed), what came over OCI is synthesized (spack.synth), indexes are
the server's own. Every answer has a strong ETag and honours If-None-Match
(304), HEAD and Range; blobs go out with sendfile. Anything else below a
cache that maps to a bucket is the S3 object of that key.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from aiohttp import web

from registry.api.blobs import send_plan
from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.cache.spack_proxy import SpackProxy
from registry.core.errors import BlobUnknown, NotFound, ObjectError, RangeUnsatisfiable
from registry.core.grammar import Digest
from registry.core.ranges import Unsatisfiable, parse_range
from registry.core.serving import BlobPlan, ByteStream
from registry.spack import synth
from registry.spack.layout import ClassicPath, bucket_of, classify
from registry.spack.service import SpackCaches
from registry.spack.specs import SpecRecord

# The cache is everything before the first segment that starts a layout.
VIEW = r"(?P<name>[a-z0-9][a-z0-9._/-]*?)/(?P<path>(?:v3|blobs|build_cache)/[^\x00]*)"
JSON = "application/json"
OCTETS = "application/octet-stream"


def register(family: PatternFamily) -> None:
    for method in ("GET", "HEAD"):
        family.add(method, VIEW, view, "pull")


def _missing(what: str) -> NotFound:
    return NotFound(f"{what} not found in this build cache")


async def view(request: web.BaseRequest, route: dict[str, str],
               ctx: Context) -> web.StreamResponse:
    caches: SpackCaches | None = ctx.spack
    cache, path = route["name"], classify(route["path"])
    if caches is None:
        if ctx.spack_proxy is not None:  # a node cache: its upstream's views
            return await _proxied(request, ctx, ctx.spack_proxy, cache, path)
        raise _missing(path.path)
    answer = await _answer(ctx, caches, cache, path)
    if answer is None:
        return await _object(request, ctx, cache, path.path)
    if isinstance(answer, StoredKey):
        return await _object(request, ctx, cache, answer.key, whole_key=True)
    if isinstance(answer, Digest):
        return await _blob(request, ctx, cache, answer)
    data, content_type = answer
    return await send_bytes(request, data, content_type)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """Send the S3 object spack wrote at `key` (the whole key, prefix included)."""

    key: str


async def _answer(ctx: Context, caches: SpackCaches, cache: str,
                  path: ClassicPath) -> tuple[bytes, str] | Digest | StoredKey | None:
    """What to send for a classic path: bytes, a blob, a stored object, or None
    (the S3 object at that path, if any)."""
    kind = path.kind
    if kind == "blob":
        return path.digest
    state = await caches.state(cache)
    if state is None:
        return None
    if kind == "layout":
        return synth.LAYOUT_JSON, JSON
    if kind in ("index3", "index2", "hash2"):
        rendered = await caches.index(cache, "v2" if kind != "index3" else "v3")
        if rendered is None:
            raise _missing(path.path)
        if kind == "index3":
            return synth.index_manifest_v3(rendered.fmt, rendered.digest, rendered.size), JSON
        if kind == "hash2":
            return rendered.digest.hex.encode(), "text/plain"
        return rendered.digest
    if kind in ("keys3", "key3", "keys2", "key2"):
        return await _keys(ctx, caches, cache, path)
    if path.hash is None:
        return None
    record = state.get(path.hash)
    if record is None:
        return None  # maybe an object spack wrote that the index does not hold
    if kind == "tarball2":
        return record.tarball
    if kind == "spec3":
        if record.source == "v3" and record.key:
            return StoredKey(record.key)  # what spack wrote, unchanged
        return await _maybe_signed(caches, cache, _spec_manifest(record), JSON)
    if kind == "specjson":
        if record.source == "v2" and record.key and record.key.endswith(".spec.json"):
            return StoredKey(record.key)
        return synth.spec_json_v2(record), JSON
    if kind == "specsig":
        if record.source == "v2" and record.key and record.key.endswith(".sig"):
            return StoredKey(record.key)
        if caches.signer is None:
            raise _missing(path.path)
        return await _maybe_signed(caches, cache, synth.spec_json_v2(record), "text/plain")
    return None


def _spec_manifest(record: SpecRecord) -> bytes:
    if record.spec_blob is None:
        raise _missing("spec file")
    return synth.spec_manifest_v3(record, record.spec_blob, record.spec_blob_size)


async def _maybe_signed(caches: SpackCaches, cache: str, data: bytes,
                        content_type: str) -> tuple[bytes, str]:
    if caches.signer is None:
        return data, content_type
    return await caches.signed(cache, data), content_type


async def _keys(ctx: Context, caches: SpackCaches, cache: str,
                path: ClassicPath) -> tuple[bytes, str] | Digest | None:
    """The site key, published as spack publishes keys, beside any a client pushed."""
    signer = caches.signer
    if signer is None:
        return None
    key = signer.public_key()
    key_digest = Digest.of(key)
    if path.kind == "key2":
        return (key, "application/pgp-keys") if path.fpr == signer.fingerprint else None
    if path.kind == "key3":
        if path.fpr != signer.fingerprint:
            return None
        await caches.store_blob(cache, key)
        return synth.key_manifest_v3(key_digest, len(key)), JSON
    fprs = [signer.fingerprint, *await _pushed_keys(ctx, cache, path.kind)]
    index = synth.key_index(fprs)
    if path.kind == "keys2":
        return index, JSON
    await caches.store_blob(cache, index)
    return synth.key_manifest_v3(Digest.of(index), len(index), synth.KEY_INDEX_TYPE), JSON


async def _pushed_keys(ctx: Context, cache: str, kind: str) -> list[str]:
    """Fingerprints of keys a client published into the cache through S3."""
    where = bucket_of(cache)
    if where is None:
        return []
    bucket, prefix = where
    sub = "build_cache/_pgp/" if kind == "keys2" else "v3/manifests/key/"
    suffix = ".pub" if kind == "keys2" else ".key.manifest.json"
    out: list[str] = []
    try:
        page = await ctx.registry.objects.list(bucket, prefix + sub, max_keys=1000)
    except ObjectError:
        return []
    for item in page.objects:
        name = item.key.rsplit("/", 1)[-1]
        if name.endswith(suffix):
            out.append(name[: -len(suffix)])
    return out


async def _proxied(request: web.BaseRequest, ctx: Context, proxy: SpackProxy, cache: str,
                   path: ClassicPath) -> web.StreamResponse:
    if path.digest is not None:
        return await _blob(request, ctx, cache, path.digest)
    digest, data, content_type = await proxy.lookup(cache, path.path)
    if digest is not None:
        return await _blob(request, ctx, cache, digest)
    assert data is not None
    return await send_bytes(request, data, content_type)


async def _blob(request: web.BaseRequest, ctx: Context, cache: str,
                digest: Digest) -> web.StreamResponse:
    headers = {"Content-Type": OCTETS, "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
    not_modified = request.headers.get("If-None-Match") == headers["ETag"]
    try:
        plan = await ctx.registry.blobs.serve(
            cache, digest, request.headers.get("Range"),
            with_body=request.method == "GET" and not not_modified)
    except BlobUnknown:
        return await _object(request, ctx, cache, f"blobs/sha256/{digest.hex[:2]}/{digest.hex}")
    try:
        if not_modified:
            return web.Response(status=304, headers=headers)
        return await send_plan(request, plan, headers)
    finally:
        await plan.close()


async def _object(request: web.BaseRequest, ctx: Context, cache: str,
                  path: str, whole_key: bool = False) -> web.StreamResponse:
    """The S3 object at `path` below the cache (or at key `path` of its bucket),
    when the cache maps to a bucket."""
    where = bucket_of(cache)
    if where is None:
        raise _missing(path)
    bucket, prefix = where
    try:
        plan = await ctx.registry.objects.serve(
            bucket, path if whole_key else prefix + path, request.headers.get("Range"),
            with_body=request.method == "GET",
            if_none_match=request.headers.get("If-None-Match"))
    except ObjectError as exc:
        if exc.status == 404:
            raise _missing(path) from None
        raise
    try:
        headers = {"Content-Type": plan.info.content_type, "Accept-Ranges": "bytes",
                   "ETag": plan.info.quoted_etag}
        if plan.not_modified:
            return web.Response(status=304, headers=headers)
        return await send_plan(request, plan, headers)
    finally:
        await plan.close()


@functools.lru_cache(maxsize=4096)  # the same documents are served again and again
def _etag(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()}"'


async def send_bytes(request: web.BaseRequest, data: bytes,
                     content_type: str) -> web.StreamResponse:
    """A small document with a strong ETag (its sha256), 304, HEAD and Range."""
    etag = _etag(data)
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes", "ETag": etag}
    match = request.headers.get("If-None-Match")
    if match is not None and etag in [m.strip() for m in match.split(",")]:
        return web.Response(status=304, headers=headers)
    if request.method == "GET" and "Range" not in request.headers:
        # The common case (an index manifest, a spec manifest), answered in one write.
        return web.Response(body=data, headers=headers)
    try:
        rng = parse_range(request.headers.get("Range"), len(data))
    except Unsatisfiable:
        raise RangeUnsatisfiable(len(data)) from None
    part = data if rng is None else data[rng.start:rng.end + 1]

    async def one() -> object:
        yield part

    plan = BlobPlan(Digest.of(data), len(data), rng,
                    ByteStream(one()) if request.method == "GET" else None)
    return await send_plan(request, plan, headers)
