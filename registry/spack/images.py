"""Images composed from a build cache: `<cache>/images:<tag>` holding a base image's
layers (if any), then the tarball of every spec of a closure (spack.compose) as a
layer, as spack's own OCI push lays them out (binary_distribution._oci_put_manifest):
the same blobs the cache holds, linked by the mount rule, so nothing is stored twice;
a config that is the base's (or spack's default one) with the diff_ids appended and
the specs' `bin` directories put in front of PATH.

Rights follow the caller: the cache's tarballs are linked only if the caller may pull
the cache, the base's blobs only if it may pull the base (core.mounts), and the HTTP
layer checks that it may push `<cache>/images`. Everything is deterministic (sorted
keys, no timestamps): the same request gives the same digest.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from registry.core.access import Caller
from registry.core.errors import BlobUnknown, ManifestUnknown, RegistryError
from registry.core.grammar import Digest
from registry.core.manifest_format import (
    DOCKER_MANIFEST,
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_MANIFEST,
    decode_json,
    parse_manifest,
)
from registry.core.service import Registry
from registry.spack import synth
from registry.spack.compose import Closure
from registry.spack.gunzip import NotGzip
from registry.spack.layer_facts import LayerFactsCache
from registry.spack.service import SpackCaches

CONFIG_MAX = 4 << 20
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DEFAULT_PATH = "/bin:/usr/bin"  # spack's _oci_retrieve_env_dict_from_config


class BaseUnusable(RegistryError):
    code, status, message = "BASE_UNUSABLE", 409, "the base image cannot be used"


class LayerUnusable(RegistryError):
    code, status, message = "LAYER_UNUSABLE", 409, "a spec's tarball cannot be a layer"


@dataclass(frozen=True)
class Base:
    """A base image: repository, the manifest's digest, its document and config."""

    repo: str
    digest: Digest
    manifest: dict
    config: dict


@dataclass(frozen=True)
class Composed:
    repo: str
    tag: str
    digest: Digest


def goarch(closure: Closure) -> str:
    """The image's architecture, as spack names it (_oci_archspec_to_gooarch); 409
    when the specs are built for different ones."""
    arches = {synth.GOARCH.get(f, f) for f in
              (synth.target_family(r.root.target) for r in closure.records)}
    if len(arches) != 1:
        raise BaseUnusable("the specs are built for different architectures",
                           {"architectures": sorted(arches)})
    return arches.pop()


class Composer:
    """Makes the images of `/api/v1/spack/<cache>/images` (see the module docstring)."""

    def __init__(self, registry: Registry, caches: SpackCaches) -> None:
        self.registry = registry
        self.caches = caches
        self.facts = LayerFactsCache(registry.blobs)

    async def base(self, repo: str, reference: str, arch: str) -> Base:
        """The image `repo:reference` (its `linux/arch` image when it is an index).
        The caller's right to pull `repo` is checked by the HTTP layer."""
        try:
            stored = await self.registry.manifests.get(repo, reference)
        except ManifestUnknown:
            raise ManifestUnknown("the base image is unknown",
                                  {"base": f"{repo}:{reference}"}) from None
        assert stored.data is not None
        if stored.media_type in INDEX_TYPES:
            index = parse_manifest(stored.data, stored.media_type)
            child = next((m for m in index.manifests if m.platform
                          and m.platform.get("os") == "linux"
                          and m.platform.get("architecture") == arch), None)
            if child is None:
                raise BaseUnusable(f"the base image has no linux/{arch} image",
                                   {"base": f"{repo}:{reference}"})
            stored = await self.registry.manifests.get(repo, str(child.digest))
        if stored.data is None or stored.media_type not in IMAGE_TYPES:
            raise BaseUnusable("the base is not an image", {"mediaType": stored.media_type})
        manifest = decode_json(stored.data)
        parsed = parse_manifest(stored.data, stored.media_type)
        if parsed.config is None or not await self.registry.blobs.linked(
                repo, parsed.config.digest):
            raise BaseUnusable("the base image's config is not in its repository")
        try:
            config = json.loads(await self.registry.blobs.read(parsed.config.digest,
                                                               CONFIG_MAX))
        except (ValueError, BlobUnknown):
            config = None
        if not isinstance(config, dict) or not isinstance(config.get("rootfs"), dict) \
                or not isinstance(config["rootfs"].get("diff_ids", []), list):
            raise BaseUnusable("the base image's config is not an image config")
        if config.get("architecture") != arch:
            raise BaseUnusable(f"the base image is {config.get('architecture')}, the specs "
                               f"are {arch}", {"base": f"{repo}:{reference}"})
        return Base(repo, stored.digest, manifest, config)

    async def compose(self, cache: str, closure: Closure, base: Base | None, tag: str | None,
                      caller: Caller) -> Composed:
        """Link every layer into `<cache>/images`, store the config, put the manifest."""
        repo = f"{cache}/images"
        arch = goarch(closure)
        base_manifest: dict[str, Any] = base.manifest if base is not None else {
            "mediaType": OCI_MANIFEST, "layers": [],
            "config": {"mediaType": synth.OCI_CONFIG}}
        docker = base_manifest.get("mediaType") == DOCKER_MANIFEST
        layers: list[dict] = []
        for layer in base_manifest.get("layers", []):
            digest = Digest.parse(layer["digest"])
            if await self.registry.mounts.link(repo, digest, caller, source=base.repo
                                               if base else None) is None:
                raise BlobUnknown("a layer of the base image is not in its repository",
                                  {"digest": str(digest)})
            layers.append(layer)
        config: dict[str, Any] = copy.deepcopy(base.config) if base is not None else {
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}, "config": {}}
        diff_ids = config["rootfs"].setdefault("diff_ids", [])
        history = config.get("history") if isinstance(config.get("history"), list) else None
        prefixes = []
        for record in closure.records:
            if await self.registry.mounts.link(repo, record.tarball, caller,
                                               source=cache) is None:
                raise BlobUnknown(f"the tarball of {record.root.name} /{record.hash} is not "
                                  "in the cache", {"digest": str(record.tarball)})
            try:
                facts = await self.facts.facts(record.tarball, record.tarball_size)
            except NotGzip as exc:  # installable from the classic views, not as a layer
                raise LayerUnusable(f"the tarball of {record.root.name} /{record.hash} is "
                                    f"not a usable gzip stream ({exc})",
                                    {"spec": f"{record.root.name}/{record.hash}"}) from None
            diff_ids.append(str(facts.diff_id))
            if facts.prefix:
                prefixes.append(facts.prefix)
            if history is not None:
                root = record.root
                history.append({"created_by": f"spack: {root.name}@{root.version} "
                                              f"/{root.hash}"})
            layers.append({"mediaType": DOCKER_LAYER if docker else synth.OCI_LAYER,
                           "digest": str(record.tarball), "size": record.tarball_size})
        config["config"] = _with_path(config.get("config"), prefixes)
        config_data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_digest = await self.caches.store_blob(repo, config_data)
        manifest: dict[str, Any] = {
            "mediaType": base_manifest.get("mediaType", OCI_MANIFEST), "schemaVersion": 2,
            "config": {"mediaType": base_manifest["config"]["mediaType"],
                       "digest": str(config_digest), "size": len(config_data)},
            "layers": layers}
        if not docker:
            manifest["annotations"] = {"org.opencontainers.image.description": ", ".join(
                f"{r.root.name}@{r.root.version} /{r.hash}" for r in closure.roots)}
        data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        tag = tag or default_tag(closure, base)
        digest, _ = await self.registry.manifests.put(repo, tag, data, manifest["mediaType"])
        return Composed(repo, tag, digest)


def _with_path(image_config: Any, prefixes: list[str]) -> dict:
    """The image config's `config` with each prefix's bin in front of PATH, the
    dependents' first (they come last in `prefixes`), as spack's run environment."""
    out = dict(image_config) if isinstance(image_config, dict) else {}
    env = [e for e in out.get("Env") or [] if isinstance(e, str)]
    path = next((e.split("=", 1)[1] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    bins = [f"{p}/bin" for p in reversed(prefixes)]
    env = [e for e in env if not e.startswith("PATH=")]
    out["Env"] = [f"PATH={':'.join([*bins, path])}", *env]
    return out


def default_tag(closure: Closure, base: Base | None) -> str:
    """A tag named by what the image holds: the same set, the same tag."""
    what = ",".join(sorted(r.hash for r in closure.roots))
    if base is not None:
        what += f"|{base.repo}@{base.digest}"
    names = "-".join(sorted({r.root.name for r in closure.roots}))[:64].strip("-_.")
    return f"{names}-{hashlib.sha256(what.encode()).hexdigest()[:16]}"
