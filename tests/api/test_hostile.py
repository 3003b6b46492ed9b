"""Hostile input: every request here must get a 4xx with the spec's JSON error body,
never a 5xx, never a traceback, and never a file outside the registry's data directory.

Requests go out byte for byte (helpers.raw), so no client normalises `..` or
re-encodes anything on the way.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    UNKNOWN_DIGEST,
    assert_error,
    call,
    image_manifest,
    image_parts,
    push_manifest,
    raw,
    start_upload,
    upload_url,
)

NAME_RE = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
HEX = "a" * 64


@dataclass
class Target:
    """What the table's placeholders stand for: {repo}, {blob}, {manifest}, {upload}."""

    repo: str
    blob: str
    manifest: str
    config: dict
    layers: list[dict]
    upload: str = ""

    def good(self, **changes) -> dict:
        return {**image_manifest(self.config, self.layers), **changes}


Body = bytes | Callable[[Target], bytes]


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str | None  # None: the spec names no code for this, any spec code will do
    body: Body = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: str | None = None


def manifest_body(**changes) -> Callable[[Target], bytes]:
    return lambda t: json.dumps(t.good(**changes)).encode()


def config_body(**changes) -> Callable[[Target], bytes]:
    return lambda t: json.dumps(t.good(config={**t.config, **changes})).encode()


def dup_config(t: Target) -> bytes:
    # Two valid descriptors under one key: parsers disagree about which one counts.
    good = json.dumps(t.good())
    first = f'"config": {json.dumps(t.layers[0])}, "config": '
    return good.replace('"config": ', first, 1).encode()


def dup_media_type(t: Target) -> bytes:
    good = json.dumps(t.good())
    return good.replace('"mediaType": ', f'"mediaType": "{OCI_INDEX}", "mediaType": ', 1).encode()


def dup_key_last_invalid(t: Target) -> bytes:
    good = json.dumps(t.good())
    return (good[:-1] + ', "schemaVersion": 1}').encode()


PUT_JSON = {"Content-Type": OCI_MANIFEST}
M = "/v2/{repo}/manifests"
B = "/v2/{repo}/blobs"
U = "/v2/{repo}/blobs/uploads"

CASES = [
    # -- repository names ---------------------------------------------------
    Case("name uppercase", "GET", "/v2/Foo/tags/list", 400, "NAME_INVALID"),
    Case("name uppercase blob", "GET", f"/v2/a/B/blobs/{UNKNOWN_DIGEST}", 400, "NAME_INVALID"),
    Case("name uppercase put", "PUT", "/v2/ABC/manifests/t", 400, "NAME_INVALID", b"{}"),
    Case("name dotdot", "GET", "/v2/a/../b/tags/list", 400, "NAME_INVALID"),
    Case("name only dotdot", "GET", "/v2/../tags/list", 400, "NAME_INVALID"),
    Case("name dotdot upload", "POST", "/v2/../../x/blobs/uploads/", 400, "NAME_INVALID"),
    Case("name dotdot put", "PUT", "/v2/a/../../x/manifests/t", 400, "NAME_INVALID", b"{}"),
    Case(
        "name dotdot referrers", "GET", f"/v2/../x/referrers/{UNKNOWN_DIGEST}", 400, "NAME_INVALID"
    ),
    Case("name encoded dotdot", "GET", "/v2/a/%2e%2e/b/tags/list", 400, "NAME_INVALID"),
    # Absolute-form targets are routed by their path, with the same checks.
    Case("absolute dotdot", "GET", "http://x/v2/a/../b/tags/list", 400, "NAME_INVALID"),
    Case("absolute encoded dotdot", "GET", "http://x/v2/%2e%2e/b/tags/list", 400,
         "NAME_INVALID"),
    Case("absolute no path", "GET", "http://x", 404, None),
    Case("asterisk target", "GET", "*", 400, None),
    Case("absolute bad port", "GET", "http://[::1]:99999/v2/", 400, None),
    Case("expect unknown huge", "POST", "/v2/{repo}/blobs/uploads/", 417, "UNSUPPORTED",
         headers={"Expect": "x" * 5000}),
    Case(
        "name encoded dotdot upload",
        "POST",
        "/v2/%2E%2E/%2e%2e/x/blobs/uploads/",
        400,
        "NAME_INVALID",
    ),
    Case(
        "name encoded slash dotdot",
        "POST",
        "/v2/a%2F..%2F..%2Fx/blobs/uploads/",
        400,
        "NAME_INVALID",
    ),
    Case("name single dot", "GET", "/v2/a/./b/tags/list", 400, "NAME_INVALID"),
    Case("name leading slash", "GET", "/v2//a/tags/list", 400, "NAME_INVALID"),
    Case("name double slash", "GET", "/v2/a//b/tags/list", 400, "NAME_INVALID"),
    Case("name trailing slash", "GET", "/v2/a//tags/list", 400, "NAME_INVALID"),
    Case("name 300 chars", "GET", "/v2/" + "a" * 300 + "/tags/list", 400, "NAME_INVALID"),
    Case("name 256 chars", "POST", "/v2/" + "a/" * 127 + "aa/blobs/uploads/", 400, "NAME_INVALID"),
    Case("name 5000 chars", "GET", "/v2/" + "ab/" * 1666 + "c/tags/list", 400, "NAME_INVALID"),
    Case("name unicode", "GET", "/v2/caf%C3%A9/tags/list", 400, "NAME_INVALID"),
    Case("name unicode rtl", "POST", "/v2/a%E2%80%AEb/blobs/uploads/", 400, "NAME_INVALID"),
    Case("name fullwidth", "GET", "/v2/%EF%BD%81/tags/list", 400, "NAME_INVALID"),
    Case("name nul", "GET", "/v2/a%00b/tags/list", 400, "NAME_INVALID"),
    Case("name newline", "GET", "/v2/a%0D%0Ab/tags/list", 400, "NAME_INVALID"),
    Case("name space", "GET", "/v2/a%20b/tags/list", 400, "NAME_INVALID"),
    Case("name backslash", "GET", "/v2/a%5C..%5Cb/tags/list", 400, "NAME_INVALID"),
    Case("name leading dash", "GET", "/v2/-a/tags/list", 400, "NAME_INVALID"),
    Case("name trailing dot", "GET", "/v2/a./tags/list", 400, "NAME_INVALID"),
    Case("name marker dir", "GET", "/v2/a/_layers/tags/list", 400, "NAME_INVALID"),
    Case("name marker upload", "POST", "/v2/{repo}/_uploads/blobs/uploads/", 400, "NAME_INVALID"),
    Case("name tilde", "GET", "/v2/~root/tags/list", 400, "NAME_INVALID"),
    # -- tags ---------------------------------------------------------------
    Case(
        "tag 129 chars put",
        "PUT",
        M + "/" + "t" * 129,
        400,
        "MANIFEST_INVALID",
        manifest_body(),
        PUT_JSON,
    ),
    Case(
        "tag leading dot put",
        "PUT",
        M + "/.hidden",
        400,
        "MANIFEST_INVALID",
        manifest_body(),
        PUT_JSON,
    ),
    Case(
        "tag leading dash put", "PUT", M + "/-x", 400, "MANIFEST_INVALID", manifest_body(), PUT_JSON
    ),
    Case("tag dotdot put", "PUT", M + "/..", 400, "MANIFEST_INVALID", manifest_body(), PUT_JSON),
    Case(
        "tag encoded dotdot put",
        "PUT",
        M + "/%2e%2e",
        400,
        "MANIFEST_INVALID",
        manifest_body(),
        PUT_JSON,
    ),
    Case(
        "tag traversal put",
        "PUT",
        M + "/..%2F..%2F..%2Fx",
        400,
        "MANIFEST_INVALID",
        manifest_body(),
        PUT_JSON,
    ),
    Case(
        "tag unicode put", "PUT", M + "/t%C3%A9", 400, "MANIFEST_INVALID", manifest_body(), PUT_JSON
    ),
    Case("tag nul put", "PUT", M + "/a%00b", 400, "MANIFEST_INVALID", manifest_body(), PUT_JSON),
    Case("tag 129 chars get", "GET", M + "/" + "t" * 129, 404, "MANIFEST_UNKNOWN"),
    Case("tag leading dot get", "GET", M + "/.bad", 404, "MANIFEST_UNKNOWN"),
    Case("tag leading dash get", "GET", M + "/-bad", 404, "MANIFEST_UNKNOWN"),
    Case("tag unicode get", "GET", M + "/%C3%A9", 404, "MANIFEST_UNKNOWN"),
    Case("tag dotdot get", "GET", M + "/..", 404, "MANIFEST_UNKNOWN"),
    Case("tag dotdot delete", "DELETE", M + "/..", 404, "MANIFEST_UNKNOWN"),
    Case("tag encoded dotdot delete", "DELETE", M + "/%2E%2E", 404, "MANIFEST_UNKNOWN"),
    # -- digests ------------------------------------------------------------
    Case("digest short", "GET", B + "/sha256:abc", 400, "DIGEST_INVALID"),
    Case("digest uppercase", "GET", B + "/sha256:" + HEX.upper(), 400, "DIGEST_INVALID"),
    Case("digest unknown algorithm", "GET", B + "/md5:" + "a" * 32, 400, "DIGEST_INVALID"),
    Case("digest no algorithm", "GET", B + "/:" + HEX, 400, "DIGEST_INVALID"),
    Case("digest no colon", "HEAD", B + "/" + HEX, 400, None),
    Case("digest huge", "GET", B + "/sha256:" + "a" * 5000, 400, "DIGEST_INVALID"),
    Case("digest nul", "GET", B + f"/sha256:{HEX}%00", 400, "DIGEST_INVALID"),
    Case("digest dotdot", "GET", B + "/sha256:..", 400, "DIGEST_INVALID"),
    Case("digest traversal", "GET", B + "/sha256:..%2F..%2F..%2Fblobs", 400, "DIGEST_INVALID"),
    Case("digest traversal delete", "DELETE", B + "/..%2F..%2Fx", 400, "DIGEST_INVALID"),
    Case("digest manifest", "GET", M + "/sha256:totallywrong", 400, "DIGEST_INVALID"),
    Case(
        "digest manifest put",
        "PUT",
        M + "/sha256:" + "z" * 64,
        400,
        "DIGEST_INVALID",
        manifest_body(),
        PUT_JSON,
    ),
    Case("digest manifest delete", "DELETE", M + "/sha512:" + "a" * 64, 400, "DIGEST_INVALID"),
    Case("digest referrers", "GET", "/v2/{repo}/referrers/sha256:..", 400, "DIGEST_INVALID"),
    Case(
        "digest referrers unicode",
        "GET",
        "/v2/{repo}/referrers/sha256:%C3%A9",
        400,
        "DIGEST_INVALID",
    ),
    Case(
        "digest query post", "POST", U + "/?digest=../../../etc/passwd", 400, "DIGEST_INVALID", b"x"
    ),
    Case(
        "digest query put", "PUT", "{upload}?digest=sha256:" + "a" * 63, 400, "DIGEST_INVALID", b"x"
    ),
    Case(
        "digest query put traversal",
        "PUT",
        "{upload}?digest=..%2F..%2Fx",
        400,
        "DIGEST_INVALID",
        b"x",
    ),
    Case(
        "mount digest traversal", "POST", U + "/?mount=../../x&from={repo}", 400, "DIGEST_INVALID"
    ),
    Case("mount from traversal", "POST", U + "/?mount={blob}&from=../../x", 400, "NAME_INVALID"),
    Case("mount from encoded", "POST", U + "/?mount={blob}&from=%2e%2e%2Fx", 400, "NAME_INVALID"),
    Case("mount from uppercase", "POST", U + "/?mount={blob}&from=ABC", 400, "NAME_INVALID"),
    # -- upload ids ---------------------------------------------------------
    Case("upload id dotdot", "GET", U + "/..", 404, "BLOB_UPLOAD_UNKNOWN"),
    Case(
        "upload id traversal", "PATCH", U + "/..%2F..%2F_layers", 404, "BLOB_UPLOAD_UNKNOWN", b"x"
    ),
    Case(
        "upload id not uuid",
        "PUT",
        U + f"/nope?digest={UNKNOWN_DIGEST}",
        404,
        "BLOB_UPLOAD_UNKNOWN",
        b"x",
    ),
    Case(
        "upload id uppercase uuid",
        "GET",
        U + "/AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA",
        404,
        "BLOB_UPLOAD_UNKNOWN",
    ),
    Case("upload id nul", "DELETE", U + "/%00", 404, "BLOB_UPLOAD_UNKNOWN"),
    # -- Range on blob GET --------------------------------------------------
    Case("range beyond end", "GET", B + "/{blob}", 416, None, headers={"Range": "bytes=999999-"}),
    Case(
        "range huge start",
        "GET",
        B + "/{blob}",
        416,
        None,
        headers={"Range": "bytes=9999999999999999999-"},
    ),
    Case("range zero suffix", "GET", B + "/{blob}", 416, None, headers={"Range": "bytes=-0"}),
    # -- Content-Range on PATCH ---------------------------------------------
    Case(
        "content-range garbage",
        "PATCH",
        "{upload}",
        400,
        "BLOB_UPLOAD_INVALID",
        b"abc",
        {"Content-Range": "abc"},
    ),
    Case(
        "content-range reversed",
        "PATCH",
        "{upload}",
        400,
        "BLOB_UPLOAD_INVALID",
        b"abc",
        {"Content-Range": "5-2"},
    ),
    Case(
        "content-range negative",
        "PATCH",
        "{upload}",
        400,
        "BLOB_UPLOAD_INVALID",
        b"abc",
        {"Content-Range": "-1-1"},
    ),
    Case(
        "content-range 20 digits",
        "PATCH",
        "{upload}",
        400,
        "BLOB_UPLOAD_INVALID",
        b"abc",
        {"Content-Range": "0-" + "9" * 20},
    ),
    Case(
        "content-range huge",
        "PATCH",
        "{upload}",
        400,
        "SIZE_INVALID",
        b"abc",
        {"Content-Range": "0-" + "9" * 18},
    ),
    Case(
        "content-range gap",
        "PATCH",
        "{upload}",
        416,
        "BLOB_UPLOAD_INVALID",
        b"abc",
        {"Content-Range": "100-102"},
    ),
    Case(
        "content-range length mismatch",
        "PATCH",
        "{upload}",
        400,
        "SIZE_INVALID",
        b"abc",
        {"Content-Range": "0-9"},
    ),
    Case(
        "content-range unicode",
        "PATCH",
        "{upload}",
        400,
        "BLOB_UPLOAD_INVALID",
        b"abc",
        {"Content-Range": "\u0660-\u0662"},
    ),
    # -- absurd Content-Length that still reaches the application -----------
    Case(
        "content-length huge manifest",
        "PUT",
        M + "/h",
        413,
        "SIZE_INVALID",
        b"{}",
        PUT_JSON,
        content_length="99999999999",
    ),
    Case(
        "content-length huge patch",
        "PATCH",
        "{upload}",
        400,
        "SIZE_INVALID",
        b"abc",
        {"Content-Range": "0-2"},
        content_length="99999999999",
    ),
    # -- manifest JSON ------------------------------------------------------
    Case("json nested arrays", "PUT", M + "/h", 400, "MANIFEST_INVALID", b"[" * 100_000, PUT_JSON),
    Case(
        "json nested objects",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        b'{"a":' * 100_000,
        PUT_JSON,
    ),
    Case(
        "json nested valid",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        b"[" * 50_000 + b"]" * 50_000,
        PUT_JSON,
    ),
    Case(
        "json huge float",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: (
            json.dumps(t.good()).replace('"schemaVersion": 2', '"schemaVersion": 1e999').encode()
        ),
        PUT_JSON,
    ),
    Case(
        "json huge int size",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        config_body(size=10**30),
        PUT_JSON,
    ),
    Case(
        "json 5000 digit int",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: (
            json.dumps(t.good())
            .replace('"schemaVersion": 2', '"schemaVersion": ' + "9" * 5000)
            .encode()
        ),
        PUT_JSON,
    ),
    Case(
        "json NaN size",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: json.dumps(t.good(config={**t.config, "size": float("nan")})).encode(),
        PUT_JSON,
    ),
    Case(
        "json invalid utf-8",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: (
            json.dumps(t.good(annotations={"a": "AAAA"})).encode().replace(b"AAAA", b"\xff\xfe")
        ),
        PUT_JSON,
    ),
    Case(
        "json lone surrogate",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: (
            json.dumps(t.good(annotations={"a": "AAAA"})).encode().replace(b"AAAA", b"\xed\xa0\x80")
        ),
        PUT_JSON,
    ),
    Case("json nul bytes", "PUT", M + "/h", 400, "MANIFEST_INVALID", b"\x00" * 64, PUT_JSON),
    Case(
        "json trailing garbage",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: json.dumps(t.good()).encode() + b"]",
        PUT_JSON,
    ),
    Case(
        "json duplicate keys last invalid",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        dup_key_last_invalid,
        PUT_JSON,
    ),
    Case(
        "json duplicate mediaType",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        dup_media_type,
        PUT_JSON,
    ),
    Case("json duplicate config", "PUT", M + "/h", 400, "MANIFEST_INVALID", dup_config, PUT_JSON),
    Case(
        "json 10001 layers",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: json.dumps(t.good(layers=t.layers * 10_001)).encode(),
        PUT_JSON,
    ),
    # -- media types with CR/LF and other junk ------------------------------
    Case(
        "media type crlf body",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        manifest_body(mediaType=OCI_MANIFEST + "\r\nX-Injected: 1"),
        {},
    ),
    Case(
        "media type crlf config",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        config_body(mediaType="application/vnd.x\r\nX-Injected: 1"),
        PUT_JSON,
    ),
    Case(
        "media type crlf parameter",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        config_body(mediaType="application/vnd.x;a=\r\nX-Injected: 1"),
        PUT_JSON,
    ),
    Case(
        "artifact type crlf",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        manifest_body(artifactType="application/vnd.x\r\nX-Injected: 1"),
        PUT_JSON,
    ),
    Case(
        "artifact type crlf parameter",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        manifest_body(artifactType='application/vnd.x; p="\r\nX-Injected: 1"'),
        PUT_JSON,
    ),
    Case(
        "media type nul",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        config_body(mediaType="application/vnd.x\u0000"),
        PUT_JSON,
    ),
    Case(
        "media type empty",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        config_body(mediaType=""),
        PUT_JSON,
    ),
    Case(
        "media type 1000 chars",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        config_body(mediaType="application/" + "x" * 1000),
        PUT_JSON,
    ),
    Case(
        "content-type unknown",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        lambda t: json.dumps({k: v for k, v in t.good().items() if k != "mediaType"}).encode(),
        {"Content-Type": "text/html"},
    ),
    Case(
        "content-type mismatch",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        manifest_body(),
        {"Content-Type": OCI_INDEX},
    ),
    Case(
        "content-type junk parameter",
        "PUT",
        M + "/h",
        400,
        "MANIFEST_INVALID",
        manifest_body(),
        {"Content-Type": OCI_INDEX + '; x="\\""'},
    ),
    # -- pagination ---------------------------------------------------------
    Case("n negative", "GET", "/v2/{repo}/tags/list?n=-1", 400, None),
    Case("n huge", "GET", "/v2/{repo}/tags/list?n=" + "9" * 40, 400, None),
    Case("n unicode digits", "GET", "/v2/{repo}/tags/list?n=%D9%A1", 400, None),
    Case("n catalog", "GET", "/v2/_catalog?n=1e9", 400, None),
]


@pytest.fixture(scope="module")
def snapshot(registry) -> set[Path]:
    """Every file near the data directory before the hostile requests."""
    return _files_outside(registry)


def _files_outside(registry) -> set[Path]:
    if registry.data_dir is None:
        return set()
    data = registry.data_dir.resolve()
    roots = [data.parent, data.parent.parent]
    found = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath).resolve()
            if here == data or data in here.parents:
                dirnames[:] = []
                continue
            found.update(here / f for f in filenames + dirnames)
    return found


@pytest.fixture(scope="module")
def target(registry, snapshot) -> Target:
    repo = registry.repo("hostile")
    config, layers = image_parts(registry, repo)
    pushed = push_manifest(registry, repo, image_manifest(config, layers), "t")
    return Target(repo, layers[0]["digest"], pushed.digest, config, layers)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile(registry, target, case):
    if "{upload}" in case.path:
        target.upload = upload_url(start_upload(registry, target.repo))
    path = case.path.format(**vars(target))
    body = case.body(target) if callable(case.body) else case.body
    resp = raw(registry, case.method, path, case.headers, body, case.content_length)
    assert resp.status < 500, (resp.status, resp.body[:300])
    assert 400 <= resp.status < 500, (resp.status, resp.body[:300])
    if case.method != "HEAD":
        assert_error(resp, case.status, case.code)
    else:
        assert resp.status == case.status
    assert not any(k.lower().startswith("x-injected") for k in resp.headers)


# Malformed HTTP that aiohttp's parser refuses before any handler runs: the
# answer must still be a 4xx with the spec's JSON body.
PROTOCOL_CASES = [
    ("content-length overflow", "PUT", "/v2/a/manifests/t", {}, "9" * 30),
    ("content-length negative", "PUT", "/v2/a/manifests/t", {}, "-1"),
    ("content-length not a number", "PATCH", "/v2/a/blobs/uploads/x", {}, "abc"),
    ("header too large", "GET", "/v2/", {"X-Big": "a" * 10_000}, None),
    ("url too long", "GET", "/v2/" + "a" * 9000 + "/tags/list", {}, None),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "length"),
    [c[1:] for c in PROTOCOL_CASES],
    ids=[c[0] for c in PROTOCOL_CASES],
)
def test_protocol_errors_are_json(registry, method, path, headers, length):
    resp = raw(registry, method, path, headers, b"{}", length)
    assert 400 <= resp.status < 500, resp.status
    assert_error(resp, resp.status)


@pytest.mark.parametrize(
    "value",
    [
        "bytes=abc",
        "bytes=5-2",
        "items=0-1",
        "bytes=0-1,5-6",
        "bytes=" + "9" * 25 + "-",
        "bytes=--1",
        "bytes=" + "0-1," * 2000,
    ],
)
def test_bad_range_header_is_ignored_or_refused(registry, target, value):
    r = call(registry, "GET", f"/v2/{target.repo}/blobs/{target.blob}", headers={"Range": value})
    assert r.status_code in (200, 206, 416), r.status_code
    if r.status_code == 200:
        assert int(r.headers["Content-Length"]) == target.layers[0]["size"]
    if r.status_code == 416:
        assert r.headers["Content-Range"] == f"bytes */{target.layers[0]['size']}"


def test_referrers_filter_with_crlf(registry, target):
    r = call(
        registry,
        "GET",
        f"/v2/{target.repo}/referrers/{target.manifest}?artifactType=a%0D%0AX-Injected:%201",
    )
    assert r.status_code in (200, 400)
    assert "X-Injected" not in r.headers
    if r.status_code == 200:
        assert r.json()["manifests"] == []
    else:
        assert_error(r, 400)


def test_tags_last_with_traversal(registry, target):
    # `last` is only compared with tag names, never used as a path
    for last, expected in (("..%2F..%2F..", ["t"]), ("..%2F..%2Fzzz", ["t"]), ("u", [])):
        r = call(registry, "GET", f"/v2/{target.repo}/tags/list?last={last}&n=5")
        assert r.status_code == 200
        assert [t for t in r.json()["tags"] if t != "h"] == expected
        assert "Link" not in r.headers


def test_target_still_intact(registry, target):
    r = call(registry, "GET", f"/v2/{target.repo}/manifests/t")
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == target.manifest
    assert call(registry, "GET", f"/v2/{target.repo}/blobs/{target.blob}").status_code == 200


def test_nothing_created_outside_data_dir(registry, snapshot):
    """Runs after the table: no new file beside the data directory."""
    assert _files_outside(registry) - snapshot == set()


def test_only_valid_repositories_on_disk(registry):
    if registry.data_dir is None:
        return
    data = registry.data_dir.resolve()
    for path in data.rglob("*"):
        assert ".." not in path.relative_to(data).parts
    repos = data / "storage" / "repositories"
    for marker in repos.rglob("_*"):
        if marker.parent.name.startswith("_") or any(
            p.startswith("_") for p in marker.relative_to(repos).parts[:-1]
        ):
            continue
        name = str(marker.parent.relative_to(repos))
        assert NAME_RE.fullmatch(name), name


def test_no_traceback_in_log(registry):
    log = registry.log()
    # show what each traceback was about, not just that there was one
    errors = re.findall(
        r"^Traceback.*?^(\w[\w.]*(?:Error|Exception|Message|Long)\b.*?)$", log, re.M | re.S
    )
    assert "Traceback" not in log, errors
