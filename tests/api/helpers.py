"""Helpers for the raw-HTTP API tests: requests sent byte for byte, the spec's errors, and
pushes through `call` (digests, descriptors and media types come from tests/pushing.py)."""

from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

import requests
from pushing import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# The error codes of the distribution spec (spec.md L788-825).
SPEC_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNKNOWN_DIGEST = "sha256:" + "0" * 64

_session = requests.Session()


def call(reg, method: str, path: str, **kw) -> requests.Response:
    """One request to `reg` (a RunningRegistry); `path` starts with /v2/."""
    kw.setdefault("timeout", 30)
    kw.setdefault("allow_redirects", False)
    return _session.request(method, reg.url + path, **kw)


@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw(
    reg,
    method: str,
    target: str | bytes,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    content_length: str | None = None,
) -> RawResponse:
    """Send exactly these bytes (no URL normalisation, no header validation)."""
    if isinstance(target, str):
        target = target.encode()
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + reg.host.encode()]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: ".encode() + value.encode("utf-8", "surrogateescape"))
    if content_length is None and (body or method in ("PUT", "POST", "PATCH")):
        content_length = str(len(body))
    if content_length is not None:
        lines.append(b"Content-Length: " + content_length.encode())
    lines.append(b"Connection: close")
    host, port = reg.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        data = resp.read()
    return RawResponse(resp.status, resp.headers, data)


def assert_error(resp, status: int, code: str | None = None) -> dict:
    """The spec's error shape: {"errors": [{"code", "message", "detail"}]} with a spec code."""
    got = resp.status if isinstance(resp, RawResponse) else resp.status_code
    body = resp.body if isinstance(resp, RawResponse) else resp.content
    assert got == status, f"expected {status}, got {got}: {body[:500]!r}"
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", f"Content-Type {ctype!r}: {body!r}"
    doc = json.loads(body)
    assert isinstance(doc, dict) and isinstance(doc.get("errors"), list), doc
    assert doc["errors"], doc
    for err in doc["errors"]:
        assert set(err) >= {"code", "message", "detail"}, err
        assert err["code"] in SPEC_CODES, err
        assert isinstance(err["message"], str), err
    if code is not None:
        assert doc["errors"][0]["code"] == code, doc
    return doc


def random_bytes(n: int = 1024) -> bytes:
    return os.urandom(n)


def to_bytes(doc: dict | bytes) -> bytes:
    return doc if isinstance(doc, bytes) else json.dumps(doc).encode()


# -- blobs -------------------------------------------------------------------


def start_upload(reg, repo: str) -> str:
    """POST a new upload session; its Location (relative or absolute)."""
    r = call(reg, "POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    return r.headers["Location"]


def upload_url(location: str) -> str:
    """The path of an upload Location, whether relative or absolute."""
    return "/" + location.split("://", 1)[1].split("/", 1)[1] if "://" in location else location


def put_upload(reg, location: str, digest: str, data: bytes = b"", **kw) -> requests.Response:
    path = upload_url(location)
    sep = "&" if "?" in path else "?"
    return call(reg, "PUT", f"{path}{sep}digest={digest}", data=data, **kw)


def push_blob(reg, repo: str, data: bytes, algorithm: str = "sha256") -> str:
    """Monolithic POST + PUT; returns the digest."""
    digest = digest_of(data, algorithm)
    r = put_upload(reg, start_upload(reg, repo), digest, data)
    assert r.status_code == 201, r.text
    return digest


# -- manifests ---------------------------------------------------------------


def image_manifest(
    config: dict,
    layers: list[dict],
    *,
    media_type: str | None = OCI_MANIFEST,
    subject: dict | None = None,
    artifact_type: str | None = None,
    annotations: dict | None = None,
) -> dict:
    doc: dict[str, Any] = {"schemaVersion": 2}
    if media_type:
        doc["mediaType"] = media_type
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = config
    doc["layers"] = layers
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    return doc


def index_manifest(
    manifests: list[dict],
    *,
    media_type: str = OCI_INDEX,
    subject: dict | None = None,
    artifact_type: str | None = None,
    annotations: dict | None = None,
) -> dict:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    return doc


def put_manifest(
    reg, repo: str, ref: str, doc: dict | bytes, media_type: str | None = OCI_MANIFEST
) -> requests.Response:
    headers = {"Content-Type": media_type} if media_type else {}
    return call(reg, "PUT", f"/v2/{repo}/manifests/{ref}", data=to_bytes(doc), headers=headers)


@dataclass
class Pushed:
    digest: str
    body: bytes
    media_type: str

    @property
    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.body)}


def push_manifest(
    reg, repo: str, doc: dict | bytes, ref: str | None = None, media_type: str = OCI_MANIFEST
) -> Pushed:
    body = to_bytes(doc)
    digest = digest_of(body)
    r = put_manifest(reg, repo, ref or digest, body, media_type)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    return Pushed(digest, body, media_type)


def image_parts(reg, repo: str, layers: int = 1, docker: bool = False) -> tuple[dict, list[dict]]:
    """Push a random config and `layers` random layers; their descriptors."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(8).hex()})
    config_type, layer_type = (DOCKER_CONFIG, DOCKER_LAYER) if docker else (OCI_CONFIG, OCI_LAYER)
    push_blob(reg, repo, config.encode())
    descs = []
    for _ in range(layers):
        data = random_bytes(256)
        push_blob(reg, repo, data)
        descs.append(descriptor(layer_type, data))
    return descriptor(config_type, config.encode()), descs


def push_image(reg, repo: str, tag: str | None = None, layers: int = 1, **kw) -> Pushed:
    """Push blobs and an OCI image manifest (by tag, or by digest without a tag)."""
    config, descs = image_parts(reg, repo, layers)
    return push_manifest(reg, repo, image_manifest(config, descs, **kw), tag)


def push_artifact(
    reg,
    repo: str,
    subject: dict | None,
    artifact_type: str,
    annotations: dict | None = None,
    tag: str | None = None,
) -> Pushed:
    """An artifact manifest: artifactType, the empty `{}` config, one small layer."""
    push_blob(reg, repo, b"{}")
    layer = random_bytes(64)
    push_blob(reg, repo, layer)
    doc = image_manifest(
        descriptor(OCI_EMPTY, b"{}"),
        [descriptor("application/octet-stream", layer)],
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
    return push_manifest(reg, repo, doc, tag)


def parse_link(value: str) -> str:
    """The target of `Link: <url>; rel="next"`."""
    target, _, rel = value.partition(";")
    assert rel.strip() == 'rel="next"', value
    target = target.strip()
    assert target.startswith("<") and target.endswith(">"), value
    return target[1:-1]


def odd_json(doc: dict) -> bytes:
    """Valid but non-canonical JSON: reversed key order, odd whitespace, trailing newlines."""
    parts = [
        f"\n\t {json.dumps(k)}  :\t{json.dumps(v, indent=3, ensure_ascii=False)}"
        for k, v in reversed(list(doc.items()))
    ]
    return ("{  " + " ,".join(parts) + "\n}\n\n").encode()


def padded(doc: dict, total: int) -> bytes:
    """`doc` with a padding annotation so that it serialises to exactly `total` bytes."""
    doc = {**doc, "annotations": {**doc.get("annotations", {}), "pad": ""}}
    base = len(to_bytes(doc))
    assert total >= base, (total, base)
    doc["annotations"]["pad"] = "x" * (total - base)
    body = to_bytes(doc)
    assert len(body) == total
    return body
