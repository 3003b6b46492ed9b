"""Where things are in spack's build-cache layouts, and the names spack gives them.

One grammar for the three ways a cache is addressed:

- OCI: repository `<cache>`, tag `<name>-<version>-<hash>.spack` per spec and
  `index.spack` for the index;
- classic over HTTPS: `/spack/<cache>/<path>`;
- classic through S3: bucket and key, the cache being `<bucket>[/<prefix>]`
  where the prefix is the part of the key before `v3/`, `blobs/` or `build_cache/`.

Every module that reads or builds a classic path or key uses these functions:
the views, the S3 bridge, the importer, and core's object service, which asks
`key_class` (injected through the factory) which keys are content-addressed.

Paths are matched by their shape and looked up by the DAG hash they end with,
never rebuilt from a spec and compared: spack's own formatting of names (for
example `format_path` on odd versions) then cannot make a record unreachable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.core.grammar import NAME_MAX, NAME_RE, Digest, is_valid_bucket
from registry.core.object_keys import BY_CONTENT, PLAIN, KeyClass, named, refused

INDEX_TAG = "index.spack"
ROOTS = ("v3", "blobs", "build_cache")
_H = r"(?P<hash>[a-z2-7]{32})"
_FPR = r"(?P<fpr>[0-9A-F]{16,40})"
# The classic paths below a cache's root, by kind.
PATTERNS: dict[str, re.Pattern[str]] = {
    "layout": re.compile(r"v3/layout\.json"),
    "index3": re.compile(r"v3/manifests/index/index\.manifest\.json"),
    "spec3": re.compile(rf"v3/manifests/spec/[^/]+/[^/]*-{_H}\.spec\.manifest\.json"),
    "keys3": re.compile(r"v3/manifests/key/keys\.manifest\.json"),
    "key3": re.compile(rf"v3/manifests/key/{_FPR}\.key\.manifest\.json"),
    "blob": re.compile(r"blobs/sha256/(?P<two>[0-9a-f]{2})/(?P<hex>[0-9a-f]{64})"),
    "index2": re.compile(r"build_cache/index\.json"),
    "hash2": re.compile(r"build_cache/index\.json\.hash"),
    "specjson": re.compile(rf"build_cache/[^/]*-{_H}\.spec\.json"),
    "specsig": re.compile(rf"build_cache/[^/]*-{_H}\.spec\.json\.sig"),
    "tarball2": re.compile(rf"build_cache/[^/]+/[^/]+/[^/]+/[^/]*-{_H}\.spack"),
    "keys2": re.compile(r"build_cache/_pgp/index\.json"),
    "key2": re.compile(rf"build_cache/_pgp/{_FPR}\.pub"),
}
# The kinds a client's update-index writes: the server keeps its own instead.
INDEX_KINDS = frozenset({"index3", "index2", "hash2"})
# Kinds spack writes when it pushes one spec.
SPEC_KINDS = frozenset({"spec3", "specjson", "specsig"})
# Kinds stored in the blob store: a blob, named by its digest, and a v2 tarball,
# named by its spec but immutable and named by digest in its spec file.
CONTENT_KINDS = frozenset({"blob", "tarball2"})
# Where a client publishes its public keys, per kind of key index: spack lists
# the keys of a cache from the files there (key2 and key3 kinds).
KEY_DIRS = {"keys2": "build_cache/_pgp/", "keys3": "v3/manifests/key/"}
# Where layout v3 keeps blobs, below a cache's root; nothing else may be there.
BLOB_DIR = "blobs/sha256/"
MISNAMED_BLOB = refused("a key under blobs/sha256/ must be blobs/sha256/<the first 2 of "
                        "64 lowercase hex digits>/<the sha256 of its content>")


@dataclass(frozen=True, slots=True)
class ClassicPath:
    """A path below a cache's root, classified: `kind` is a key of PATTERNS, or
    "other"; `hash`, `fpr` and `digest` are set for the kinds that name one."""

    path: str
    kind: str
    hash: str | None = None
    fpr: str | None = None
    digest: Digest | None = None


def classify(path: str) -> ClassicPath:
    for kind, pattern in PATTERNS.items():
        m = pattern.fullmatch(path)
        if m is None:
            continue
        groups = m.groupdict()
        if kind == "blob":
            if groups["hex"][:2] != groups["two"]:
                break
            return ClassicPath(path, kind, digest=Digest("sha256", groups["hex"]))
        return ClassicPath(path, kind, groups.get("hash"), groups.get("fpr"))
    return ClassicPath(path, "other")


def valid_cache(name: str) -> bool:
    """A cache name is an OCI repository name."""
    return len(name) <= NAME_MAX and NAME_RE.fullmatch(name) is not None


def split_root(key: str) -> tuple[str, str] | None:
    """`[<prefix>/]<classic path>` -> (prefix, empty or ending in "/", classic path):
    the classic path starts at the first segment that starts a layout (`v3`,
    `blobs`, `build_cache`); None when no segment does."""
    start = 0
    while True:
        end = key.find("/", start)
        if key[start:len(key) if end < 0 else end] in ROOTS:
            return key[:start], key[start:]
        if end < 0:
            return None
        start = end + 1


def split_key(bucket: str, key: str) -> tuple[str, str] | None:
    """An S3 object -> (cache, classic path), or None when it is not below a
    layout root or the cache would not be a valid repository name."""
    where = split_root(key)
    if where is None:
        return None
    cache = bucket + "/" + where[0][:-1] if where[0] else bucket
    return (cache, where[1]) if valid_cache(cache) else None


def classify_key(key: str) -> ClassicPath:
    """A key (or path) with any prefix before its layout root, classified by what
    follows the root; "other" when no segment starts a layout."""
    where = split_root(key)
    return classify(where[1]) if where is not None else ClassicPath(key, "other")


def key_class(key: str) -> KeyClass:
    """How core's object service stores the bytes of S3 key `key`
    (core.object_keys.KeyClassifier): a blob key is checked against the digest
    it names, a v2 tarball is stored under the digest of its bytes, both in the
    blob store; a key under `blobs/sha256/` that is not a blob's path (a prefix
    that is not the digest's, not 64 lowercase hex) is refused; every other key is
    plain. The prefix before the layout root may be anything (a key need not be
    below a valid cache to be a blob)."""
    path = classify_key(key)
    if path.digest is not None:
        return named(path.digest)
    if path.kind in CONTENT_KINDS:
        return BY_CONTENT
    # Anything else under blobs/sha256/ would pass for a blob that was verified.
    return MISNAMED_BLOB if path.path.startswith(BLOB_DIR) else PLAIN


def blob_path(digest: Digest) -> str:
    """Layout v3: where a blob is, below a cache's root (`blobs/sha256/<2 hex>/<hex>`)."""
    return f"blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def bucket_of(cache: str) -> tuple[str, str] | None:
    """A cache -> (bucket, key prefix ending in "/" or empty), when its first
    component is a valid bucket name (so it can also be pushed through S3)."""
    bucket, _, rest = cache.partition("/")
    if not is_valid_bucket(bucket):
        return None
    return bucket, f"{rest}/" if rest else ""


def spec_tag(name: str, version: str, dag_hash: str) -> str:
    """The tag spack gives a spec's image (spack.oci.image.ensure_valid_tag)."""
    tag = re.sub(r"[^\w.-]", "_", f"{name}-{version}-{dag_hash}.spack", flags=re.ASCII)
    return tag[:64] + tag[-64:] if len(tag) > 128 else tag


def hash_of_tag(tag: str) -> str | None:
    """The DAG hash a spec tag ends with, or None for any other tag."""
    m = re.search(r"-([a-z2-7]{32})\.spack\Z", tag)
    return m.group(1) if m and tag != INDEX_TAG else None
