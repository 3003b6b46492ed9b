"""What one manifest needs of a host, read from its annotations, its image config and the
platform its parent index gives it, each fact with the source it came from.

Sources, first wins per field (docs/architecture-aware.md, "Annotating images"):

1. our annotations (`platforms.ANNOTATIONS`): target, CUDA, ROCm, MPI, memory;
2. the platform: the parent index's entry for this manifest, else the image config's
   `os`/`architecture`/`variant`/`os.version`/`os.features`; amd64 v1-v4 and arm64 v8/v9
   give archspec's generic targets;
3. the image's environment (`config.Env`): `NVIDIA_REQUIRE_CUDA` (`cuda>=12.2 brand=...`),
   then `CUDA_VERSION`;
4. for images made by `spack buildcache push oci://...`, the spec the config carries (its
   top-level `spec` key, a spec.json): the root's `arch.target`, and the versions of its
   `mpi` provider, `cuda` and `hip` dependencies.

For the target, the spec's is taken over the variant's generic one when it is at least as
demanding (the variant's is its ancestor): an amd64 image with no variant built by Spack
for zen3 needs zen3. Everything is hostile input: a config is at most MAX_CONFIG bytes,
lists are capped, and only PlatformError leaves `describe`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import archspec.cpu

from registry.arch import platforms
from registry.arch.host import Candidate, HostError, Mpi, Version, dotted, parse_version
from registry.arch.platforms import PlatformError

MAX_CONFIG = 1 << 20  # bytes of an image config read to describe it
MAX_ITEMS = 4096  # entries of Env, spec nodes, dependencies of the root
MAX_FEATURES = 64
MAX_MEMORY_DIGITS = 20

# NVIDIA's container runtime grammar: space-separated constraints, the first `cuda>=X.Y`
# is the minimum CUDA version; brand/driver constraints after it are the driver's business.
_REQUIRE_CUDA = re.compile(r"(?:^|\s)cuda>=([0-9][0-9.]*)")
_WORD = re.compile(r"[A-Za-z0-9_.\-+]{1,64}")


@dataclass(frozen=True)
class Build:
    """What a manifest needs of a host (OS, CPU target, GPU runtimes, MPI, memory) and,
    in `sources`, where each fact came from: "annotation", "variant" (the OCI platform's
    architecture/variant), "index" (the parent index's platform), "config" (the image
    config's platform fields), "env" (the config's environment) or "spack" (a spec)."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    target: str = "x86_64"
    cuda: Version | None = None
    rocm: Version | None = None
    mpi: Mpi | None = None
    memory: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def describe(*, annotations: Mapping[str, str] | None, config: bytes | Mapping[str, Any] | None,
             platform: Mapping[str, Any] | None) -> Build:
    """The Build of one manifest: its `annotations`, its image `config` (raw bytes as
    stored, or already parsed; None for an artifact without one) and the `platform` its
    parent index lists for it (None when it was not reached through an index).

    Raises PlatformError for anything it cannot understand, never another exception."""
    notes = _annotations(annotations)
    doc = _config(config)
    sources: dict[str, str] = {}
    plat = _platform(platform, doc, sources)
    env = _env(doc)
    spec = _spack_root(doc)

    target, sources["target"] = _target(plat, notes, spec)
    cuda = _first(sources, "cuda", [
        ("annotation", lambda: _version(notes.get(platforms.CUDA), "cuda")),
        ("env", lambda: _require_cuda(env.get("NVIDIA_REQUIRE_CUDA"))),
        ("env", lambda: _short_version(env.get("CUDA_VERSION"), "CUDA_VERSION")),
        ("spack", lambda: spec.dependency_version("cuda") if spec else None),
    ])
    rocm = _first(sources, "rocm", [
        ("annotation", lambda: _version(notes.get(platforms.ROCM), "rocm")),
        ("spack", lambda: spec.dependency_version("hip") if spec else None),
    ])
    mpi = _first(sources, "mpi", [
        ("annotation", lambda: _mpi(notes.get(platforms.MPI))),
        ("spack", lambda: spec.mpi() if spec else None),
    ])
    memory = _first(sources, "memory", [
        ("annotation", lambda: _memory(notes.get(platforms.MEMORY))),
    ])
    return Build(os=plat["os"], architecture=plat["architecture"], variant=plat["variant"],
                 os_version=plat["os.version"], os_features=plat["os.features"],
                 features=plat["features"], target=target, cuda=cuda, rocm=rocm, mpi=mpi,
                 memory=memory, sources=sources)


def candidate(digest: str, build: Build) -> Candidate:
    """The build as a candidate for `fit.judge`/`fit.rank`."""
    return Candidate(digest=digest, os=build.os, target=build.target, cuda=build.cuda,
                     rocm=build.rocm, mpi=build.mpi)


def fields(build: Build) -> dict[str, str | int | None]:
    """The build as flat columns for JSON or SQLite: versions dotted ("12.4"), MPI as
    "flavour@version", feature lists comma-joined, sources as "field=source,...";
    absent facts are None."""
    return {
        "os": build.os,
        "architecture": build.architecture,
        "variant": build.variant or None,
        "os_version": build.os_version or None,
        "os_features": ",".join(build.os_features) or None,
        "features": ",".join(build.features) or None,
        "target": build.target,
        "cuda": dotted(build.cuda) if build.cuda is not None else None,
        "rocm": dotted(build.rocm) if build.rocm is not None else None,
        "mpi": str(build.mpi) if build.mpi is not None else None,
        "memory": build.memory,
        "sources": ",".join(f"{k}={v}" for k, v in sorted(build.sources.items())) or None,
    }


# -- reading each source ---------------------------------------------------------------

def _annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    # Only our own keys are looked at; the rest of a manifest's annotations is not ours.
    if annotations is None:
        return {}
    if not isinstance(annotations, Mapping):
        raise PlatformError("annotations are not an object")
    notes: dict[str, str] = {}
    for key in platforms.ANNOTATIONS:
        value = annotations.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > platforms.MAX_NAME:
            raise PlatformError(f"annotation {key} is not a short string")
        notes[key] = value
    return notes


def _config(config: bytes | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if config is None:
        return {}
    if isinstance(config, (bytes, bytearray, memoryview)):
        if len(config) > MAX_CONFIG:
            raise PlatformError(f"image config is larger than {MAX_CONFIG} bytes")
        try:
            config = json.loads(bytes(config))
        except (ValueError, RecursionError):
            raise PlatformError("image config is not JSON") from None
    if not isinstance(config, Mapping):
        raise PlatformError("image config is not a JSON object")
    return config


def _string(value: Any, what: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > platforms.MAX_NAME or not value.isprintable():
        raise PlatformError(f"{what} is not a short printable string")
    return value


def _words(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_FEATURES:
        raise PlatformError(f"{what} is not a short list")
    if not all(isinstance(word, str) and _WORD.fullmatch(word) for word in value):
        raise PlatformError(f"{what} holds something that is not a plain word")
    return tuple(value)


def _platform(platform: Mapping[str, Any] | None, doc: Mapping[str, Any],
              sources: dict[str, str]) -> dict[str, Any]:
    """os, architecture, variant, os.version, os.features, features: the index's platform
    when it gives one, else the image config's fields of the same names."""
    if platform is not None and not isinstance(platform, Mapping):
        raise PlatformError("platform is not an object")
    given = platform or {}
    origin = "index" if given.get("architecture") is not None else "config"
    chosen = given if origin == "index" else doc
    out: dict[str, Any] = {
        "os": _string(chosen.get("os"), "os"),
        "architecture": _string(chosen.get("architecture"), "architecture"),
        "variant": _string(chosen.get("variant"), "variant"),
        "os.version": _string(chosen.get("os.version"), "os.version"),
        "os.features": _words(chosen.get("os.features"), "os.features"),
        "features": _words(chosen.get("features"), "features"),
    }
    if not out["architecture"] or not out["os"]:
        raise PlatformError("the manifest names no os and architecture")
    sources.update(os=origin, architecture=origin)
    return out


def _env(doc: Mapping[str, Any]) -> dict[str, str]:
    inner = doc.get("config")
    if inner is None:
        return {}
    if not isinstance(inner, Mapping):
        raise PlatformError("image config's config is not an object")
    entries = inner.get("Env")
    if entries is None:
        return {}
    if not isinstance(entries, list) or len(entries) > MAX_ITEMS:
        raise PlatformError("image config's Env is not a bounded list")
    env: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, str):
            raise PlatformError("image config's Env holds a non-string")
        key, _, value = entry.partition("=")
        if key in ("NVIDIA_REQUIRE_CUDA", "CUDA_VERSION"):
            env[key] = value
    return env


def _version(text: str | None, kind: str) -> Version | None:
    return None if text is None else parse_version(text, kind)


def _short_version(text: str | None, kind: str) -> Version | None:
    # CUDA_VERSION is "12.2.0"; a driver is compared on major.minor, as NVIDIA does.
    version = _version(text, kind)
    return None if version is None else version[:2]


def _require_cuda(text: str | None) -> Version | None:
    if text is None:
        return None
    match = _REQUIRE_CUDA.search(text[:1024])
    return None if match is None else parse_version(match.group(1), "NVIDIA_REQUIRE_CUDA")


def _mpi(text: str | None) -> Mpi | None:
    return None if text is None else Mpi.parse(text)


def _memory(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or len(text) > MAX_MEMORY_DIGITS:
        raise PlatformError("memory annotation is not a number of bytes")
    return int(text)


def _first(sources: dict[str, str], name: str, readers: list[tuple[str, Any]]) -> Any:
    """The first reader's non-None answer, its source noted under `name`."""
    for origin, read in readers:
        value = read()
        if value is not None:
            sources[name] = origin
            return value
    return None


def _target(plat: Mapping[str, Any], notes: Mapping[str, str],
            spec: _Spec | None) -> tuple[str, str]:
    generic = platforms.generic_target(plat["architecture"], plat["variant"])
    explicit = platforms.platform_target(plat["architecture"], plat["variant"], dict(notes))
    if platforms.TARGET in notes and explicit == notes[platforms.TARGET]:
        return explicit, "annotation"
    built = spec.target() if spec else None
    if built is not None and archspec.cpu.TARGETS.get(built) is not None:
        if platforms.family(built) != platforms.family(generic):
            raise PlatformError(f"spack target {built!r} is not a {plat['architecture']} target")
        if archspec.cpu.TARGETS[built] >= archspec.cpu.TARGETS[generic]:
            return built, "spack"
    return generic, "variant"


# -- a spec carried by spack's OCI push ---------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    """The root node of a spec.json a Spack-pushed image config carries, and its nodes."""

    root: Mapping[str, Any]
    by_hash: Mapping[str, Mapping[str, Any]]

    def target(self) -> str | None:
        arch = self.root.get("arch")
        if arch is None:
            return None
        if not isinstance(arch, Mapping):
            raise PlatformError("spec arch is not an object")
        target = arch.get("target")
        if isinstance(target, Mapping):  # a microarchitecture dict: {"name": ..., ...}
            target = target.get("name")
        return None if target is None else _string(target, "spec target")

    def _edges(self) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
        """(name, edge, node) of each dependency of the root whose node the spec holds."""
        deps = self.root.get("dependencies") or []
        if not isinstance(deps, list) or len(deps) > MAX_ITEMS:
            raise PlatformError("spec dependencies are not a bounded list")
        for edge in deps:
            if not isinstance(edge, Mapping):
                raise PlatformError("spec dependency is not an object")
            digest = edge.get("hash")
            node = self.by_hash.get(digest) if isinstance(digest, str) else None
            if node is not None:
                yield _string(edge.get("name"), "spec dependency name"), edge, node

    @staticmethod
    def _version(node: Mapping[str, Any], what: str) -> Version | None:
        text = node.get("version")
        if text is None:
            return None
        try:  # a Spack version may be "4.1.6" or "develop"; only dotted ones say anything
            return parse_version(_string(text, what), what)
        except HostError:
            return None

    def dependency_version(self, name: str) -> Version | None:
        """major.minor of the root's dependency called `name` (cuda, hip), if any."""
        for dep, _, node in self._edges():
            if dep == name:
                version = self._version(node, f"{name} version")
                return None if version is None else version[:2]
        return None

    def mpi(self) -> Mpi | None:
        """The root's `mpi` provider (a dependency edge with virtual "mpi") and its version."""
        for dep, edge, node in self._edges():
            params = edge.get("parameters")
            virtuals = params.get("virtuals") if isinstance(params, Mapping) else None
            if isinstance(virtuals, list) and "mpi" in virtuals[:MAX_FEATURES]:
                flavour = Mpi.parse(dep).flavour
                return Mpi(flavour, (self._version(node, "mpi version") or ())[:3])
        return None


def _spack_root(doc: Mapping[str, Any]) -> _Spec | None:
    spec = doc.get("spec")
    if spec is None:
        return None
    nodes = spec.get("nodes") if isinstance(spec, Mapping) else None
    if not isinstance(nodes, list) or not nodes or len(nodes) > MAX_ITEMS:
        raise PlatformError("config's spec is not a spec.json with a bounded list of nodes")
    if not all(isinstance(node, Mapping) for node in nodes):
        raise PlatformError("a spec node is not an object")
    by_hash = {node["hash"]: node for node in nodes if isinstance(node.get("hash"), str)}
    return _Spec(root=nodes[0], by_hash=by_hash)
