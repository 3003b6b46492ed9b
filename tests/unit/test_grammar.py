import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.core.errors import DigestInvalid, NameInvalid
from registry.core.grammar import (
    Digest,
    is_valid_media_type,
    is_valid_tag,
    is_valid_upload_id,
    validate_name,
)

GOOD_NAMES = ["a", "library/ubuntu", "a.b/c_d/e__f/g-h", "a--b", "x/y/z/w", "0/1", "a" * 255]
BAD_NAMES = ["", "A", "a/", "/a", "a//b", "a/../b", "..", "a_", "_a", "a.", "a___b", "a/B",
             "a b", "a" * 256, "é", "a/.b", "a:b", "a%2fb"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names(name):
    with pytest.raises(NameInvalid):
        validate_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.0", "_x", "A-b.c_d", "a" * 128, "0"])
def test_valid_tags(tag):
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a" * 129, "a/b", "a:b", "é", "a b"])
def test_invalid_tags(tag):
    assert not is_valid_tag(tag)


def test_digest_roundtrip():
    d = Digest.of(b"hello")
    assert str(d).startswith("sha256:") and len(d.hex) == 64
    assert Digest.parse(str(d)) == d
    d512 = Digest.of(b"hello", "sha512")
    assert Digest.parse(str(d512)) == d512 and len(d512.hex) == 128


@pytest.mark.parametrize("value", [
    "sha256:totallywrong", "sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha512:" + "a" * 64,
    "md5:" + "a" * 32, "sha256", ":abc", "sha256:", "SHA256:" + "a" * 64,
    "sha256:" + "a" * 64 + "/../x", "", "x" * 300,
])
def test_invalid_digests(value):
    with pytest.raises(DigestInvalid):
        Digest.parse(value)


@given(st.text(max_size=80))
def test_digest_parse_never_crashes(value):
    try:
        d = Digest.parse(value)
    except DigestInvalid:
        return
    assert "/" not in str(d) and ".." not in str(d)


@given(st.text(max_size=80))
def test_names_never_allow_traversal(value):
    try:
        validate_name(value)
    except NameInvalid:
        return
    assert ".." not in value.split("/") and not value.startswith("/")


def test_media_types():
    assert is_valid_media_type("application/vnd.oci.image.manifest.v1+json")
    assert is_valid_media_type("application/json; charset=utf-8")
    assert not is_valid_media_type("application")
    assert not is_valid_media_type("a/b\r\nX-Injected: 1")
    assert not is_valid_media_type(42)


def test_upload_ids():
    assert is_valid_upload_id("123e4567-e89b-12d3-a456-426614174000")
    assert not is_valid_upload_id("../123e4567-e89b-12d3-a456-426614174000")
    assert not is_valid_upload_id("123E4567-E89B-12D3-A456-426614174000")
