"""Build small OCI image layouts on disk, in pure Python, for the client tests.

No image can be pulled from outside, so every test makes its own: an image
layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`) that skopeo
reads with its `oci:DIR:TAG` transport. Layers hold random bytes, so two images
never share blobs unless a test asks for it (pass `seed` to repeat one).
Everything else (tar headers, gzip headers, JSON) is deterministic.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
FIXED_TIME = "2024-01-01T00:00:00Z"
FIXED_MTIME = 1704067200


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def descriptor(media_type: str, data: bytes, **extra: object) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


@dataclass
class LayoutImage:
    """What was written; `blobs` maps digest -> bytes for every blob of the image."""

    path: Path
    tag: str
    digest: str  # digest of the top manifest (image manifest or index)
    media_type: str
    manifest: bytes  # exact bytes of the top manifest
    blobs: dict[str, bytes] = field(default_factory=dict)
    # for an image: its config and layer digests; for an index: per-platform children
    config_digest: str | None = None
    layer_digests: list[str] = field(default_factory=list)
    children: dict[str, str] = field(default_factory=dict)  # "os/arch" -> manifest digest

    @property
    def ref(self) -> str:
        """The skopeo/podman reference for this image, `oci:DIR:TAG`."""
        return f"oci:{self.path}:{self.tag}"

    @property
    def size(self) -> int:
        return len(self.manifest)


def make_layer(rng: random.Random, index: int, files: int = 2, file_size: int = 512) -> bytes:
    """An uncompressed tar with a directory and `files` small random files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo(f"layer{index}")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        d.mtime = FIXED_MTIME
        tar.addfile(d)
        for n in range(files):
            data = rng.randbytes(file_size)
            info = tarfile.TarInfo(f"layer{index}/file{n}.bin")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = FIXED_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_blob(root: Path, data: bytes) -> str:
    digest = sha256(data)
    path = root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _write_layout(root: Path, top: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [top]}
    (root / "index.json").write_bytes(canonical_json(index))


def _image_blobs(
    rng: random.Random, os_name: str, arch: str, layers: int, labels: dict[str, str] | None,
    env: list[str] | None = None, annotations: dict[str, str] | None = None,
) -> tuple[bytes, dict[str, bytes], str, list[str]]:
    """Build config, layers and manifest for one platform; returns manifest bytes + blobs."""
    blobs: dict[str, bytes] = {}
    layer_descs, diff_ids, layer_digests = [], [], []
    for i in range(layers):
        raw = make_layer(rng, i)
        gz = gzip.compress(raw, compresslevel=6, mtime=0)
        diff_ids.append(sha256(raw))
        desc = descriptor(MT_LAYER_GZIP, gz)
        layer_descs.append(desc)
        layer_digests.append(desc["digest"])
        blobs[desc["digest"]] = gz
    config = {
        "created": FIXED_TIME,
        "architecture": arch,
        "os": os_name,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    *(env or [])],
            "Cmd": ["/layer0/file0.bin"],
            "Labels": labels or {"org.example.test": "oci_layout"},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": FIXED_TIME, "created_by": f"oci_layout.py layer {i}"} for i in range(layers)
        ],
    }
    config_bytes = canonical_json(config)
    config_desc = descriptor(MT_CONFIG, config_bytes)
    blobs[config_desc["digest"]] = config_bytes
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc,
        "layers": layer_descs,
    }
    if annotations:
        manifest["annotations"] = annotations
    return canonical_json(manifest), blobs, config_desc["digest"], layer_digests


def build_image(
    path: Path,
    tag: str = "latest",
    *,
    os_name: str = "linux",
    arch: str = "amd64",
    layers: int = 2,
    labels: dict[str, str] | None = None,
    seed: int | None = None,
) -> LayoutImage:
    """Write a single-platform image layout at `path`; returns its description."""
    rng = random.Random(seed) if seed is not None else random.Random()
    manifest, blobs, config_digest, layer_digests = _image_blobs(rng, os_name, arch, layers, labels)
    for data in blobs.values():
        _write_blob(path, data)
    digest = _write_blob(path, manifest)
    _write_layout(path, descriptor(MT_MANIFEST, manifest, annotations={REF_NAME: tag}))
    return LayoutImage(
        path=path,
        tag=tag,
        digest=digest,
        media_type=MT_MANIFEST,
        manifest=manifest,
        blobs={**blobs, digest: manifest},
        config_digest=config_digest,
        layer_digests=layer_digests,
    )


def build_index(
    path: Path,
    tag: str = "latest",
    *,
    platforms: tuple[tuple[str, str], ...] = (("linux", "amd64"), ("linux", "arm64")),
    layers: int = 1,
    seed: int | None = None,
) -> LayoutImage:
    """Write a multi-platform image index layout at `path` (one manifest per platform)."""
    rng = random.Random(seed) if seed is not None else random.Random()
    all_blobs: dict[str, bytes] = {}
    entries, children = [], {}
    for os_name, arch in platforms:
        manifest, blobs, _, _ = _image_blobs(rng, os_name, arch, layers, None)
        for data in blobs.values():
            _write_blob(path, data)
        child = _write_blob(path, manifest)
        all_blobs.update(blobs)
        all_blobs[child] = manifest
        children[f"{os_name}/{arch}"] = child
        entries.append(
            descriptor(MT_MANIFEST, manifest, platform={"architecture": arch, "os": os_name})
        )
    index = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries})
    digest = _write_blob(path, index)
    all_blobs[digest] = index
    _write_layout(path, descriptor(MT_INDEX, index, annotations={REF_NAME: tag}))
    return LayoutImage(
        path=path,
        tag=tag,
        digest=digest,
        media_type=MT_INDEX,
        manifest=index,
        blobs=all_blobs,
        children=children,
    )


def build_platform_index(path: Path, tag: str, children: dict[str, dict]) -> LayoutImage:
    """An index layout of one child per entry of `children`: name -> {"platform": {...},
    and optionally "annotations" (the child manifest's) and "env" (its config's)};
    `children` of the result maps each name to its manifest digest."""
    rng = random.Random()
    all_blobs: dict[str, bytes] = {}
    entries, digests = [], {}
    for name, spec in children.items():
        plat = spec["platform"]
        manifest, blobs, _, _ = _image_blobs(rng, plat["os"], plat["architecture"], 1, None,
                                             spec.get("env"), spec.get("annotations"))
        for data in (*blobs.values(), manifest):
            all_blobs[_write_blob(path, data)] = data
        digests[name] = sha256(manifest)
        entries.append(descriptor(MT_MANIFEST, manifest, platform=plat))
    index = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries})
    digest = _write_blob(path, index)
    all_blobs[digest] = index
    _write_layout(path, descriptor(MT_INDEX, index, annotations={REF_NAME: tag}))
    return LayoutImage(path=path, tag=tag, digest=digest, media_type=MT_INDEX,
                       manifest=index, blobs=all_blobs, children=digests)


def read_layout(path: Path, tag: str | None = None) -> tuple[dict, bytes]:
    """The index.json entry for `tag` (or the only one) and the bytes of that manifest."""
    index = json.loads((path / "index.json").read_text())
    entries = index["manifests"]
    if tag is not None:
        entries = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == tag]
    if len(entries) != 1:
        raise AssertionError(f"expected one manifest for tag {tag!r} in {path}: {index}")
    entry = entries[0]
    return entry, read_blob(path, entry["digest"])


def read_blob(path: Path, digest: str) -> bytes:
    algo, hexpart = digest.split(":", 1)
    return (path / "blobs" / algo / hexpart).read_bytes()


def layout_blob_digests(path: Path) -> set[str]:
    """Every blob digest present in a layout, verified against its content."""
    found = set()
    for f in (path / "blobs" / "sha256").iterdir():
        digest = "sha256:" + f.name
        if sha256(f.read_bytes()) != digest:
            raise AssertionError(f"blob {f} does not match its digest")
        found.add(digest)
    return found


def media_type_of(response) -> str:
    """A response's Content-Type without parameters (clients ignore `; charset=...`)."""
    return response.headers.get("Content-Type", "").split(";")[0].strip()
