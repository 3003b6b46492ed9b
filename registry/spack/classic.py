"""The classic mirror views of the build caches this registry keeps
(spack.views.ClassicViews): `/spack/<cache>/...` in layouts v3 (spack >= 1.0)
and v2 (spack 0.2x).

Paths are classified by their shape (spack.layout) and answered from the
cache's records: what spack itself wrote through S3 is served unchanged (it
may be signed), what came over OCI is synthesized (spack.synth), indexes are
the server's own, and the site key (when the server signs) is published as
spack publishes keys, beside any a client pushed. Anything else below a cache
that maps to a bucket is the S3 object of that key.
"""

from __future__ import annotations

from collections import OrderedDict

from registry.core.errors import ObjectError
from registry.core.grammar import Digest
from registry.core.protocols import Objects
from registry.spack import synth
from registry.spack.layout import (
    KEY_DIRS,
    ClassicPath,
    blob_path,
    bucket_of,
    classify,
    classify_key,
)
from registry.spack.service import Rendered, SpackCaches
from registry.spack.specs import SpecRecord
from registry.spack.state import CacheState
from registry.spack.views import Answer, BlobRef, Document, ObjectRef, check_cache, missing

JSON = "application/json"
# Keys a client published that the key index lists (spack lists a few at most).
PUSHED_KEYS_MAX = 1000
# Answers kept per worker (a few hundred bytes each): an install reads one spec
# manifest per spec, a build farm the same ones again and again.
MEMO_MAX = 8192
# Kinds whose answer follows from the cache's records alone (and the site key, fixed
# for the process's life): kept while the cache's state is at the same version.
# Indexes are not (a collection may free a rendered index: `SpackCaches.index`
# checks and renders it again), nor keys (the pushed ones are S3 objects).
MEMO_KINDS = frozenset({"layout", "spec3", "specjson", "specsig", "tarball2"})


class Memo:
    """Answers by (cache, path), each valid for one version of one cache state:
    a spec manifest or signature read again costs no database read, no JSON
    encoding and no store read of its signature."""

    def __init__(self, size: int = MEMO_MAX) -> None:
        self.size = size
        self._answers: OrderedDict[tuple[str, str], tuple[CacheState, int, Answer]] = \
            OrderedDict()

    def get(self, cache: str, path: str, state: CacheState) -> Answer | None:
        entry = self._answers.get((cache, path))
        if entry is None or entry[0] is not state or entry[1] != state.version:
            return None
        return entry[2]

    def put(self, cache: str, path: str, state: CacheState, version: int,
            answer: Answer) -> None:
        """Keep `answer`, made from `state` at `version` (read before the answer was
        made: a change meanwhile makes the entry stale at once)."""
        answers = self._answers
        answers[(cache, path)] = (state, version, answer)
        if len(answers) > self.size:
            answers.popitem(last=False)  # the oldest put (not an LRU: a hit costs nothing)


class SpackViews:
    """The views of this registry's build caches, from their records and objects."""

    def __init__(self, caches: SpackCaches, objects: Objects) -> None:
        self.caches = caches
        self.objects = objects
        self.memo = Memo()
        # The v3 index manifest of the last index rendered per (cache, format).
        self._index_manifests: dict[tuple[str, int], tuple[Rendered, Document]] = {}

    async def answer(self, cache: str, path: str) -> Answer:
        check_cache(cache)
        where = classify(path)
        state: CacheState | None = None
        version = 0
        if where.kind in MEMO_KINDS:
            state = await self.caches.state(cache)
            if state is not None:
                kept = self.memo.get(cache, path, state)
                if kept is not None:
                    return kept
                version = state.version
        found = await self._answer(cache, where)
        if found is not None:
            if state is not None:
                self.memo.put(cache, path, state, version, found)
            return found
        stored = _stored(cache, path)  # maybe an object spack wrote that no record holds
        if stored is None:
            raise missing(path)
        return stored

    async def _answer(self, cache: str, path: ClassicPath) -> Answer | None:
        """What the cache's records say `path` is; None: the S3 object at that path."""
        kind = path.kind
        if path.digest is not None:
            return BlobRef(cache, path.digest, _stored(cache, path.path))
        caches = self.caches
        state = await caches.state(cache)
        if state is None:
            return None
        if kind == "layout":
            return Document(synth.LAYOUT_JSON, JSON)
        if kind in ("index3", "index2", "hash2"):
            rendered = await caches.index(cache, "v2" if kind != "index3" else "v3")
            if rendered is None:
                raise missing(path.path)
            if kind == "index3":
                return self._index_manifest(cache, rendered)
            if kind == "hash2":
                return Document(rendered.digest.hex.encode(), "text/plain")
            return self._blob(cache, rendered.digest)
        if kind in ("keys3", "key3", "keys2", "key2"):
            return await self._keys(cache, path)
        record = await state.get(path.hash) if path.hash is not None else None
        if record is None:
            return None  # maybe an object spack wrote that the index does not hold
        if kind == "tarball2":
            return self._blob(cache, record.tarball)
        if kind == "spec3":
            if record.source == "v3" and _pushed_as(record, "spec3"):
                return _pushed(cache, record.key)  # what spack wrote, unchanged
            return await self._maybe_signed(cache, _spec_manifest(record), JSON)
        if kind == "specjson":
            if record.source == "v2" and _pushed_as(record, "specjson"):
                return _pushed(cache, record.key)
            return Document(synth.spec_json_v2(record), JSON)
        if kind == "specsig":
            if record.source == "v2" and _pushed_as(record, "specsig"):
                return _pushed(cache, record.key)
            if caches.signer is None:
                raise missing(path.path)
            return await self._maybe_signed(cache, synth.spec_json_v2(record), "text/plain")
        return None

    def _index_manifest(self, cache: str, rendered: Rendered) -> Document:
        """The v3 index manifest of `rendered`, made once per rendering."""
        key = (cache, rendered.fmt)
        kept = self._index_manifests.get(key)
        if kept is not None and kept[0] is rendered:
            return kept[1]
        doc = Document(synth.index_manifest_v3(rendered.fmt, rendered.digest, rendered.size),
                       JSON)
        self._index_manifests[key] = (rendered, doc)
        return doc

    @staticmethod
    def _blob(cache: str, digest: Digest) -> BlobRef:
        return BlobRef(cache, digest, _stored(cache, blob_path(digest)))

    async def _maybe_signed(self, cache: str, data: bytes, content_type: str) -> Document:
        if self.caches.signer is None:
            return Document(data, content_type)
        return Document(await self.caches.signed(cache, data), content_type)

    async def _keys(self, cache: str, path: ClassicPath) -> Answer | None:
        """The site key, published as spack publishes keys, beside any a client pushed."""
        caches = self.caches
        signer = caches.signer
        if signer is None:
            return None
        key = signer.public_key()
        if path.kind == "key2":
            return Document(key, "application/pgp-keys") if path.fpr == signer.fingerprint \
                else None
        if path.kind == "key3":
            if path.fpr != signer.fingerprint:
                return None
            await caches.store_blob(cache, key)
            return Document(synth.key_manifest_v3(Digest.of(key), len(key)), JSON)
        index = synth.key_index([signer.fingerprint, *await self._pushed_keys(cache, path.kind)])
        if path.kind == "keys2":
            return Document(index, JSON)
        await caches.store_blob(cache, index)
        return Document(synth.key_manifest_v3(Digest.of(index), len(index),
                                              synth.KEY_INDEX_TYPE), JSON)

    async def _pushed_keys(self, cache: str, kind: str) -> list[str]:
        """Fingerprints of keys a client published into the cache through S3: the
        objects in the key directory of that index that classify as its keys."""
        where = bucket_of(cache)
        if where is None:
            return []
        bucket, prefix = where
        want = "key2" if kind == "keys2" else "key3"
        try:
            page = await self.objects.list(bucket, prefix + KEY_DIRS[kind],
                                           max_keys=PUSHED_KEYS_MAX)
        except ObjectError:
            return []
        out: list[str] = []
        for item in page.objects:
            path = classify(item.key[len(prefix):])
            if path.kind == want and path.fpr is not None:
                out.append(path.fpr)
        return out


def _stored(cache: str, path: str) -> ObjectRef | None:
    """The S3 object at `path` below the cache, when the cache maps to a bucket."""
    where = bucket_of(cache)
    return None if where is None else ObjectRef(where[0], where[1] + path)


def _pushed_as(record: SpecRecord, kind: str) -> bool:
    """Whether spack pushed the record's document at a key of that kind."""
    return record.key is not None and classify_key(record.key).kind == kind


def _pushed(cache: str, key: str | None) -> ObjectRef:
    """The object spack pushed at `key` of the cache's bucket (a record's key)."""
    where = bucket_of(cache)
    if where is None or key is None:  # a record with a key came through S3: a bucket
        raise missing("spec file")
    return ObjectRef(where[0], key)


def _spec_manifest(record: SpecRecord) -> bytes:
    if record.spec_blob is None:
        raise missing("spec file")
    return synth.spec_manifest_v3(record, record.spec_blob, record.spec_blob_size)
