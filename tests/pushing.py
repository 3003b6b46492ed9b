"""The one way tests push and pull images: over HTTP to a running registry (sync, with
`requests`), through an aiohttp test client (async), or straight through the core
services. Every test directory imports it (`from pushing import ...`); helpers of
their own (tests/api/helpers.py for raw protocol checks) build on it.

`target` is a base URL ("http://127.0.0.1:5000") or anything with a `.url` (a
RunningRegistry, an in-process app)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_config(arch: str = "amd64", note: str = "", **extra: Any) -> bytes:
    doc: dict[str, Any] = {"architecture": arch, "os": "linux", **extra}
    if note:
        doc["note"] = note
    return json.dumps(doc).encode()


def manifest_doc(config: bytes, layers: list[bytes], *, layer_type: str = OCI_LAYER,
                 annotations: dict | None = None, subject: dict | None = None) -> dict:
    """An OCI image manifest naming `config` and `layers` (bytes, digested here)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(layer_type, x) for x in layers],
    }
    if annotations:
        doc["annotations"] = annotations
    if subject is not None:
        doc["subject"] = subject
    return doc


def manifest_for(config: bytes, layers: list[bytes], note: str = "", **kw: Any) -> bytes:
    """manifest_doc as bytes, annotated {"note": note} when a note is given."""
    if note:
        kw.setdefault("annotations", {"note": note})
    return json.dumps(manifest_doc(config, layers, **kw)).encode()


@dataclass
class Image:
    """What push_image pushed: the manifest and the digests of its blobs (config first)."""

    repo: str
    tag: str | None
    manifest: bytes
    digest: str
    blobs: list[str] = field(default_factory=list)


# -- over HTTP, synchronously --------------------------------------------------------


def _url(target: Any) -> str:
    return target if isinstance(target, str) else target.url


def _session(session: requests.Session | None, auth: tuple[str, str] | None) -> Any:
    if session is not None:
        return session
    if auth is None:
        return requests
    s = requests.Session()
    s.auth = auth
    return s


def push_blob(target: Any, repo: str, data: bytes, *, auth: tuple[str, str] | None = None,
              session: requests.Session | None = None, timeout: float = 60,
              **kw: Any) -> str:
    """A monolithic upload in one request (POST ?digest= with the body); the digest."""
    digest = digest_of(data)
    http = _session(session, auth)
    r = http.post(f"{_url(target)}/v2/{repo}/blobs/uploads/", params={"digest": digest},
                  data=data, timeout=timeout, **kw)
    assert r.status_code == 201, r.text
    return digest


def put_manifest(target: Any, repo: str, ref: str, body: bytes | dict,
                 media_type: str = OCI_MANIFEST, *, auth: tuple[str, str] | None = None,
                 session: requests.Session | None = None, **kw: Any) -> str:
    """PUT a manifest that must be accepted; its digest as the registry says it."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = _session(session, auth).put(f"{_url(target)}/v2/{repo}/manifests/{ref}", data=data,
                                    headers={"Content-Type": media_type}, timeout=30, **kw)
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def push_image(target: Any, repo: str, tag: str | None = "v1",
               layers: list[bytes] | None = None, note: str = "", *,
               config: bytes | None = None, layer_type: str = OCI_LAYER,
               annotations: dict | None = None, auth: tuple[str, str] | None = None,
               session: requests.Session | None = None, **kw: Any) -> Image:
    """Blobs, then the manifest under `tag` (by digest when tag is None). Without
    `layers`, one small layer named after the repository and the note."""
    http = _session(session, auth)
    config = config if config is not None else image_config(note=note)
    layers = layers if layers is not None else [f"layer of {repo} {note}".encode()]
    blobs = [push_blob(target, repo, b, session=http, **kw) for b in [config, *layers]]
    body = manifest_for(config, layers, note, layer_type=layer_type, annotations=annotations)
    digest = put_manifest(target, repo, tag or digest_of(body), body, session=http, **kw)
    assert digest == digest_of(body)
    return Image(repo, tag, body, digest, blobs)


def pull_image(target: Any, repo: str, ref: str, **kw: Any) -> tuple[str, list[bytes]]:
    """(manifest digest, [config, *layers]) fetched and digest-checked."""
    url = _url(target)
    r = requests.get(f"{url}/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST},
                     timeout=30, **kw)
    assert r.status_code == 200, r.text
    doc = r.json()
    blobs = []
    for desc in [doc["config"], *doc["layers"]]:
        b = requests.get(f"{url}/v2/{repo}/blobs/{desc['digest']}", timeout=60, **kw)
        assert b.status_code == 200, b.text
        assert digest_of(b.content) == desc["digest"]
        blobs.append(b.content)
    return r.headers["Docker-Content-Digest"], blobs


# -- through an aiohttp test client ----------------------------------------------------


async def push_blob_async(client: Any, repo: str, data: bytes) -> str:
    """POST then PUT ?digest= through an aiohttp (test) client; the digest."""
    digest = digest_of(data)
    r = await client.post(f"/v2/{repo}/blobs/uploads/", data=b"")
    assert r.status == 202, await r.text()
    loc = r.headers["Location"]
    sep = "&" if "?" in loc else "?"
    r = await client.put(f"{loc}{sep}digest={digest}", data=data)
    assert r.status == 201, await r.text()
    return digest


# -- Spack's OCI push (spack buildcache push oci://...) ----------------------------------


def spack_layers(spec: Any) -> list[Any]:
    """The specs whose tarballs an OCI push of `spec` sends: dependencies first (each
    once, depth first), the root last."""
    out: list[Any] = []

    def walk(s: Any) -> None:
        for d in s.deps:
            walk(d)
            if d not in out:
                out.append(d)

    walk(spec)
    return [*out, spec]


def spack_manifest(spec: Any, config: bytes | None = None) -> tuple[bytes, dict]:
    """(config, manifest) as spack's OCI push writes them for `spec`."""
    config = config if config is not None else spec.oci_config()
    return config, manifest_doc(config, [s.tarball for s in spack_layers(spec)])


def push_spack_oci(target: Any, repo: str, spec: Any, *,
                   auth: tuple[str, str] | None = None) -> None:
    """As spack's OCI push over HTTP: tarballs, the config carrying the spec, the manifest
    under the spec's tag."""
    config, doc = spack_manifest(spec)
    for s in spack_layers(spec):
        push_blob(target, repo, s.tarball, auth=auth)
    push_blob(target, repo, config, auth=auth)
    put_manifest(target, repo, spec.tag, doc, auth=auth)


async def push_spack_oci_async(client: Any, repo: str, spec: Any, config: bytes | None = None,
                               tag: str | None = None) -> tuple[int, str]:
    """push_spack_oci through an aiohttp test client; the manifest PUT's (status, text)."""
    config, doc = spack_manifest(spec, config)
    for s in spack_layers(spec):
        await push_blob_async(client, repo, s.tarball)
    await push_blob_async(client, repo, config)
    r = await client.put(f"/v2/{repo}/manifests/{tag or spec.tag}",
                         data=json.dumps(doc).encode(), headers={"Content-Type": OCI_MANIFEST})
    return r.status, await r.text()


# -- straight through the core services (no HTTP) ---------------------------------------


async def chunks(*parts: bytes):
    for part in parts:
        yield part


def core_digest(data: bytes) -> Any:
    """The sha256 of data as the core's Digest type."""
    from registry.core.grammar import Digest

    return Digest.parse(digest_of(data))


async def store_blob(reg: Any, repo: str, data: bytes) -> Any:
    """Upload `data` whole through `reg.uploads` (a core Registry); its Digest."""
    digest = core_digest(data)
    await reg.uploads.upload_whole(repo, digest, chunks(data), len(data))
    return digest


async def store_image(reg: Any, repo: str, tag: str | None, note: str = "",
                      subject: dict | None = None) -> tuple[Any, bytes]:
    """A small image (config + one layer) put through the core services, by tag or by
    digest if tag is None: (manifest Digest, manifest bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = b"layer " + note.encode()
    await store_blob(reg, repo, config)
    await store_blob(reg, repo, layer)
    body = json.dumps(manifest_doc(config, [layer], layer_type="application/octet-stream",
                                   annotations={"note": note}, subject=subject)).encode()
    digest, _ = await reg.manifests.put(repo, tag or digest_of(body), body, OCI_MANIFEST)
    return digest, body
