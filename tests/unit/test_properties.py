"""Property tests (hypothesis) over the parsers every request goes through: tags and
references, Content-Range, Range and manifests. Whatever the input, each either
answers within its contract or raises its domain error, never anything else."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.core.errors import BlobUploadInvalid, ManifestInvalid, RegistryError
from registry.core.grammar import Digest, is_digest_like, is_valid_tag
from registry.core.manifest_format import OCI_INDEX, OCI_MANIFEST, parse_manifest
from registry.core.ranges import Unsatisfiable, parse_content_range, parse_range

HEX = "0123456789abcdef"
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")


@given(st.text(max_size=200))
def test_tags_are_exactly_the_spec_grammar(value):
    assert is_valid_tag(value) == bool(TAG.fullmatch(value))
    if is_valid_tag(value):
        assert "/" not in value and ":" not in value and len(value) <= 128


@given(st.text(max_size=200))
def test_a_reference_is_a_tag_or_a_digest_never_both(value):
    if is_digest_like(value):
        assert not is_valid_tag(value)  # a tag has no ':'
        try:
            Digest.parse(value)
        except RegistryError:
            pass


@given(st.text(alphabet=HEX, min_size=64, max_size=64))
def test_digests_round_trip(hexd):
    digest = Digest.parse(f"sha256:{hexd}")
    assert str(digest) == f"sha256:{hexd}" and digest.hex == hexd


@given(st.text(max_size=60))
def test_content_range_never_crashes(value):
    try:
        start, end = parse_content_range(value)
    except BlobUploadInvalid:
        return
    assert 0 <= start <= end


@given(st.integers(0, 2**62), st.integers(0, 2**62))
def test_content_range_round_trip(a, b):
    start, end = min(a, b), max(a, b)
    assert parse_content_range(f"{start}-{end}") == (start, end)


@given(st.text(max_size=60), st.integers(0, 2**40))
def test_range_never_crashes_and_stays_inside(value, size):
    try:
        got = parse_range(value, size)
    except Unsatisfiable:
        return
    if got is not None:
        assert 0 <= got.start <= got.end < size and got.length >= 1


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 10**9))
def test_range_round_trip(a, b, size):
    start, end = min(a, b), max(a, b)
    try:
        got = parse_range(f"bytes={start}-{end}", size)
    except Unsatisfiable:
        assert start >= size
        return
    assert got.start == start and got.end == min(end, size - 1)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=6),
    max_leaves=30)
KEYS = st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests",
                        "subject", "annotations", "artifactType", "digest", "size"])
MANIFESTISH = st.dictionaries(KEYS, JSON, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, MANIFESTISH), st.sampled_from([None, OCI_MANIFEST, OCI_INDEX,
                                                      "text/plain"]))
def test_manifests_parse_or_are_refused_as_manifest_invalid(doc, content_type):
    data = json.dumps(doc).encode()
    try:
        manifest = parse_manifest(data, content_type)
    except ManifestInvalid:
        return
    for desc in manifest.blobs + manifest.manifests:
        assert isinstance(desc.digest, Digest) and desc.size >= 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_manifest_bytes_never_crash(data):
    try:
        parse_manifest(data, OCI_MANIFEST)
    except ManifestInvalid:
        pass
