"""Object key encoding (paths.encode_key): reversible, in the path grammar, order-preserving."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from registry.storage import paths
from registry.storage.driver import MAX_COMPONENT, check_path
from registry.storage.paths import (
    InvalidBucketName,
    InvalidKey,
    KeyTooLong,
    decode_key,
    encode_key,
    encode_prefix,
    object_key,
    object_path,
)

# Characters that stress the encoding: separators, dots, every escape range's
# edges, the escape characters themselves, controls and multi-byte UTF-8.
TRICKY = [*"/.-_9z8yaAZ0 !~:@[`{\x00\x7f", "\u00fc", "\u20ac", "\U0001f600", "\u00ff"]
chars = st.sampled_from(TRICKY) | st.characters(codec="utf-8")
keys = st.text(chars, min_size=1, max_size=60)


def storable(key: str) -> bool:
    try:
        encode_key(key)
    except KeyTooLong:
        return False
    return True


@settings(max_examples=1000)
@given(keys)
@example("a//b")
@example("/")
@example("//")
@example("a/")
@example(".")
@example("..")
@example("./..")
@example("x" * 254)
def test_round_trip_and_grammar(key: str) -> None:
    assume(storable(key))
    encoded = encode_key(key)
    assert decode_key(encoded) == key
    path = object_path("my-bucket", key)
    assert check_path(path) == path
    assert object_key("my-bucket", path) == key


@settings(max_examples=1000)
@given(keys, keys)
@example("a", "a/b")
@example("a/b", "a-")
@example("a//b", "a/.x")
@example("a//", "a/")
@example("a/", "a/\x00")
@example("9", ":")
@example("z", "\u00e9")
@example("Z", "_")
def test_order_preserved(a: str, b: str) -> None:
    assume(storable(a) and storable(b))
    ea, eb = encode_key(a), encode_key(b)
    assert (a.encode() < b.encode()) == (ea < eb)
    assert (a == b) == (ea == eb)


@settings(max_examples=1000)
@given(keys, st.text(chars, max_size=8))
@example("a//x", "a/")
@example("a", "a/")
@example("a/.x", "a/")
@example("ab", "a")
def test_prefix_maps_to_path_prefix(key: str, prefix: str) -> None:
    assume(storable(key))
    for p in (prefix, key[:len(prefix)]):  # an arbitrary and a matching prefix
        assert key.startswith(p) == encode_key(key).startswith(encode_prefix(p))


def test_leaf_and_directory_never_clash() -> None:
    """S3 holds `a` and `a/b` together; their encodings never make `a` both."""
    assert encode_key("a") == "a-" and encode_key("a/b") == "a/b-"
    assert encode_key("a/") == "a/-" and encode_key("a//") == "a/._/-"
    assert not any(c.endswith("-") for c in encode_key("a-/b./c-/d").split("/")[:-1])


def test_examples_and_readability() -> None:
    assert encode_key("linux/zlib-1.3.spack") == "linux/z7Alib-2D1-2E3-2Espack-"
    assert encode_key("x/../y") == "x/-2E-2E/y-"
    assert encode_key("ü") == "zC3zBC-"


def test_limits() -> None:
    assert storable("a" * 254) and not storable("a" * 255)  # leaf end makes 256
    assert storable("a" * 255 + "/b")  # a directory segment has no end mark
    assert storable("ü" * 42) and not storable("ü" * 43)  # 2 bytes, 3 chars each
    assert storable("/" * 1024)  # the longest path: 3073 characters
    assert len(object_path("b" * 63, "/" * 1024)) <= paths.MAX_PATH
    with pytest.raises(KeyTooLong):
        encode_key("a/" * 512 + "b")  # 1025 bytes
    with pytest.raises(KeyTooLong):
        encode_key("a/" + "%" * 85)
    assert len(encode_key("%" * 84)) == 84 * 3 + 1 <= MAX_COMPONENT
    with pytest.raises(InvalidKey):
        encode_key("")
    with pytest.raises(InvalidKey):
        encode_key("\ud800")  # a lone surrogate is not UTF-8


@pytest.mark.parametrize("path", ["a", "-41-", "-4-", "a/b", "._-", "a/-/b-", "zC3-", "a-b",
                                  "-", "zZZ-"])
def test_decode_refuses_what_encode_never_makes(path: str) -> None:
    with pytest.raises(InvalidKey):
        decode_key(path)


@pytest.mark.parametrize("bucket", ["ab", "A-bucket", "-ab", "ab-", "a" * 64, "a/b", "a_b", ""])
def test_bucket_names_checked(bucket: str) -> None:
    with pytest.raises(InvalidBucketName):
        object_path(bucket, "k")
