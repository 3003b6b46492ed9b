"""Generated Spack build-cache entries (specs, tarballs, OCI images) shaped like
the ones spack v0.23 (spec format 4) and v1.1 (format 5) write, for the tests
and the spack load scenarios. Generated data only: no spack code."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field

B32 = "abcdefghijklmnopqrstuvwxyz234567"


def dag_hash(rng: random.Random) -> str:
    return "".join(rng.choice(B32) for _ in range(32))


@dataclass
class FakeSpec:
    """One spec: its node dicts (root first) and its tarball."""

    name: str
    version: str
    hash: str
    nodes: list[dict]
    tarball: bytes
    fmt: int
    deps: list[FakeSpec] = field(default_factory=list)

    @property
    def doc(self) -> dict:
        return {"_meta": {"version": self.fmt}, "nodes": self.nodes}

    @property
    def tarball_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.tarball).hexdigest()

    @property
    def tag(self) -> str:
        return f"{self.name}-{self.version}-{self.hash}.spack"

    def oci_config(self) -> bytes:
        return json.dumps({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}, "config": {"Env": []},
            "spec": self.doc, "buildcache_layout_version": 2,
            "binary_cache_checksum": {"hash_algorithm": "sha256",
                                      "hash": self.tarball_digest.split(":")[1]},
        }, separators=(",", ":")).encode()

    def spec_json_v2(self) -> bytes:
        return json.dumps({"spec": self.doc, "buildcache_layout_version": 2,
                           "binary_cache_checksum": {
                               "hash_algorithm": "sha256",
                               "hash": self.tarball_digest.split(":")[1]}}).encode()

    def spec_file_v3(self) -> bytes:
        return gzip.compress(json.dumps({"spec": self.doc, "buildcache_layout_version": 2},
                                        separators=(",", ":")).encode(), mtime=0)


def tarball(name: str, size: int = 1024, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = random.Random(seed).randbytes(size)
        info = tarfile.TarInfo(f"{name}/share/{name}.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def node(name: str, version: str, h: str, fmt: int, deps: list[FakeSpec],
         target: str = "x86_64_v3") -> dict:
    n: dict = {
        "name": name, "version": version,
        "arch": {"platform": "linux", "platform_os": "debian12",
                 "target": {"name": target, "vendor": "GenuineIntel", "features": [],
                            "generation": 0, "parents": []}},
        "namespace": "builtin",
        "parameters": {"build_system": "generic", "shared": True, "cflags": [],
                       "cppflags": [], "cxxflags": [], "fflags": [], "ldflags": [],
                       "ldlibs": []},
        "package_hash": "x" * 32,
    }
    if fmt == 4:
        n["compiler"] = {"name": "gcc", "version": "12.2.0"}
    else:
        n["annotations"] = {"original_specfile_version": 5, "compiler": "gcc@=12.2.0"}
    if deps:
        n["dependencies"] = [{"name": d.name, "hash": d.hash,
                              "parameters": {"deptypes": ["build", "link"], "virtuals": []}}
                             for d in deps]
    n["hash"] = h
    return n


def make_spec(name: str, version: str = "1.0", deps: list[FakeSpec] | None = None,
              fmt: int = 5, seed: int | None = None, target: str = "x86_64_v3",
              tar_size: int = 1024) -> FakeSpec:
    rng = random.Random(seed if seed is not None else f"{name}-{version}-{fmt}")
    deps = deps or []
    h = dag_hash(rng)
    nodes = [node(name, version, h, fmt, deps, target)]
    seen = {h}
    for d in deps:
        for n in d.nodes:
            if n["hash"] not in seen:
                seen.add(n["hash"])
                nodes.append(n)
    return FakeSpec(name, version, h, nodes, tarball(name, tar_size, rng.randrange(1 << 30)),
                    fmt, deps)
