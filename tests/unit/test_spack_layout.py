"""Spack's build-cache paths and names, and clearsigned documents."""

from __future__ import annotations

import re

import pytest

from registry.api.spack_views import VIEW
from registry.core.grammar import Digest
from registry.core.object_keys import BY_CONTENT, PLAIN, named
from registry.spack.layout import (
    MISNAMED_BLOB,
    blob_path,
    bucket_of,
    classify,
    classify_key,
    hash_of_tag,
    key_class,
    spec_tag,
    split_key,
    split_root,
)
from registry.spack.s3_bridge import clear_text

H = "abcdefghijklmnopqrstuvwxyz234567"
HEX = "ab" + "0" * 62
TARBALL = f"build_cache/linux-x-y/gcc-12/zlib-1.3/linux-x-y-gcc-12-zlib-1.3-{H}.spack"


@pytest.mark.parametrize("path,kind", [
    ("v3/layout.json", "layout"),
    ("v3/manifests/index/index.manifest.json", "index3"),
    (f"v3/manifests/spec/zlib/zlib-1.3-{H}.spec.manifest.json", "spec3"),
    ("v3/manifests/key/0123456789ABCDEF0123456789ABCDEF01234567.key.manifest.json", "key3"),
    ("v3/manifests/key/keys.manifest.json", "keys3"),
    ("blobs/sha256/ab/ab" + "0" * 62, "blob"),
    ("blobs/sha256/cd/ab" + "0" * 62, "other"),  # the two hex must be the digest's
    ("build_cache/index.json", "index2"),
    ("build_cache/index.json.hash", "hash2"),
    (f"build_cache/linux-x-y-gcc-12-zlib-1.3-{H}.spec.json", "specjson"),
    (f"build_cache/linux-x-y-gcc-12-zlib-1.3-{H}.spec.json.sig", "specsig"),
    (f"build_cache/linux-x-y/gcc-12/zlib-1.3/linux-x-y-gcc-12-zlib-1.3-{H}.spack", "tarball2"),
    ("build_cache/_pgp/index.json", "keys2"),
    ("build_cache/_pgp/0123456789ABCDEF.pub", "key2"),
    (f"v3/manifests/spec/zlib/zlib-1.3-{H[:-1]}.spec.manifest.json", "other"),
])
def test_classify(path, kind):
    assert classify(path).kind == kind


def test_hash_comes_from_the_path():
    assert classify(f"v3/manifests/spec/a/a-1-{H}.spec.manifest.json").hash == H


def test_caches_and_buckets():
    assert split_key("mybucket", "pre/fix/blobs/sha256/ab/x") == ("mybucket/pre/fix",
                                                                   "blobs/sha256/ab/x")
    assert split_key("mybucket", "build_cache/index.json") == ("mybucket",
                                                               "build_cache/index.json")
    assert split_key("mybucket", "other/key") is None
    assert split_key("mybucket", "Upper/v3/layout.json") is None  # not a repository name
    assert bucket_of("mybucket/pre/fix") == ("mybucket", "pre/fix/")
    assert bucket_of("mybucket") == ("mybucket", "")
    assert bucket_of("my_cache") is None and bucket_of("ab") is None
    assert split_root("a/b/v3/layout.json") == ("a/b/", "v3/layout.json")
    assert split_root("v3") == ("", "v3") and split_root("a/v30/x") is None


@pytest.mark.parametrize("path", [
    "site/cache/v3/layout.json", "v3/x/blobs/sha256/ab/x", "a/build_cache/index.json",
    "a/b/c/v3/manifests/key/keys.manifest.json", "v3/layout.json", "a/x/y",
])
def test_the_view_route_splits_as_split_key(path):
    m = re.fullmatch(VIEW, path)
    head, _, rest = path.partition("/")
    assert (m and (m["name"], m["path"])) == (split_key(head, rest) or None)


def test_keys_are_classified_below_any_prefix():
    spec = f"build_cache/linux-x-y-gcc-12-zlib-1.3-{H}.spec.json"
    assert classify_key(f"pre/fix/{spec}").kind == "specjson"
    assert classify_key(f"pre/fix/{spec}").hash == H
    assert classify_key(f"{spec}.sig").kind == "specsig"
    assert classify_key("nothing/here.spec.json").kind == "other"


def test_keys_are_built_as_they_are_classified():
    digest = Digest("sha256", HEX)
    assert blob_path(digest) == f"blobs/sha256/ab/{HEX}"
    assert classify(blob_path(digest)).digest == digest


@pytest.mark.parametrize("key,want", [
    (f"blobs/sha256/ab/{HEX}", named(Digest("sha256", HEX))),
    (f"pre/fix/blobs/sha256/ab/{HEX}", named(Digest("sha256", HEX))),
    (f"Not A Cache/blobs/sha256/ab/{HEX}", named(Digest("sha256", HEX))),
    (TARBALL, BY_CONTENT),
    (f"site/{TARBALL}", BY_CONTENT),
    # Under blobs/sha256/, what is not quite a blob's path is refused: stored as a
    # plain object it would pass for a verified blob.
    (f"blobs/sha256/AB/{HEX.upper()}", MISNAMED_BLOB),
    (f"blobs/sha256/ab/{HEX}\n", MISNAMED_BLOB),
    (f"blobs/sha256/ab/{HEX}/", MISNAMED_BLOB),
    (f"blobs/sha256/ab/{HEX}/x", MISNAMED_BLOB),
    (f"blobs/sha256/ab/{HEX[:-1]}", MISNAMED_BLOB),
    (f"blobs/sha256/00/{HEX}", MISNAMED_BLOB),  # the prefix is not the digest's
    (f"site/blobs/sha256/00/{HEX}", MISNAMED_BLOB),
    (f"blobs/sha256/{HEX}", MISNAMED_BLOB),
    (f"blobs/sha256//ab/{HEX}", MISNAMED_BLOB),
    ("blobs/sha256/ab/ab" + "\u0660" * 62, MISNAMED_BLOB),  # Arabic-Indic digits
    (f"blobs/sha256/ab/{HEX}\x00", MISNAMED_BLOB),
    # Other shapes that are not quite a blob or a tarball stay plain objects.
    (f"blobs/sha512/ab/{HEX}", PLAIN),
    (f"v3/blobs/sha256/ab/{HEX}", PLAIN),  # below v3/: not the blob root
    ("build_cache/linux-x-y/gcc-12/zlib-1.3/zlib.spack", PLAIN),  # no DAG hash
    (f"build_cache/gcc-12/zlib-1.3/x-{H}.spack", PLAIN),  # not three folders deep
    (f"build_cache/linux-x-y-gcc-12-zlib-1.3-{H}.spec.json", PLAIN),
    ("v3/layout.json", PLAIN),
    ("", PLAIN),
    ("blobs", PLAIN),
    ("/" * 1024, PLAIN),
    ("build_cache/" + "-" * 1000 + ".spack", PLAIN),
    ("blobs/" * 200, PLAIN),
])
def test_key_class(key, want):
    assert key_class(key) == want


def test_tags_as_spack_makes_them():
    assert spec_tag("zlib", "1.3", H) == f"zlib-1.3-{H}.spack"
    assert spec_tag("zlib", "git.a/b=1", H) == f"zlib-git.a_b_1-{H}.spack"
    long = spec_tag("x" * 200, "1", H)
    assert len(long) == 128 and long.endswith(f"{H}.spack")
    assert hash_of_tag(long) == H
    assert hash_of_tag("index.spack") is None and hash_of_tag("latest") is None


def test_clear_text_of_a_clearsigned_document():
    signed = (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
              b'{"a":1}\n- -----not a header\n'
              b"-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n")
    assert clear_text(signed) == b'{"a":1}\n-----not a header'
    assert clear_text(b'{"a":1}') == b'{"a":1}'
