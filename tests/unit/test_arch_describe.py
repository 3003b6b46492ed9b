"""registry.arch.describe: what a manifest needs of a host, from annotations, the platform,
the image's environment and the spec a Spack-pushed config carries; hostile input gives
PlatformError and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.arch import platforms
from registry.arch.describe import MAX_CONFIG, Build, candidate, describe, fields
from registry.arch.fit import judge
from registry.arch.host import Mpi, parse_host
from registry.arch.platforms import PlatformError

AMD64 = {"os": "linux", "architecture": "amd64"}


def config(env: list[str] | None = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {"architecture": "amd64", "os": "linux",
                           "rootfs": {"type": "layers", "diff_ids": []}}
    if env is not None:
        doc["config"] = {"Env": env}
    doc.update(extra)
    return json.dumps(doc).encode()


def spack_config(target: Any, deps: list[tuple[str, str, list[str]]] = (),  # type: ignore[assignment]
                 architecture: str = "amd64") -> bytes:
    """An image config as `spack buildcache push oci://` writes it: the base image's config
    plus a top-level spec.json (binary_distribution._oci_put_manifest's extra_config)."""
    root = {"name": "hpl", "version": "2.3", "hash": "root0",
            "arch": {"platform": "linux", "platform_os": "ubuntu24.04", "target": target},
            "dependencies": [{"name": name, "hash": f"h{name}",
                              "parameters": {"deptypes": ["build", "link"], "virtuals": virtuals}}
                             for name, _, virtuals in deps]}
    nodes = [root] + [{"name": name, "version": version, "hash": f"h{name}"}
                      for name, version, _ in deps]
    return json.dumps({"architecture": architecture, "os": "linux",
                       "config": {"Env": ["PATH=/opt/view/bin"]},
                       "spec": {"_meta": {"version": 5}, "nodes": nodes},
                       "buildcache_layout_version": 2}).encode()


def test_a_bare_amd64_image_is_generic_x86_64() -> None:
    build = describe(annotations={}, config=config(), platform=None)
    assert (build.os, build.architecture, build.target) == ("linux", "amd64", "x86_64")
    assert build.cuda is build.rocm is build.mpi is build.memory is None
    assert build.sources == {"os": "config", "architecture": "config", "target": "variant"}


@pytest.mark.parametrize(("arch", "variant", "target"), [
    ("amd64", "v2", "x86_64_v2"), ("amd64", "v3", "x86_64_v3"), ("amd64", "v4", "x86_64_v4"),
    ("arm64", "v8", "aarch64"), ("arm64", "v9", "armv9.0a"), ("ppc64le", "", "ppc64le"),
])
def test_the_index_platform_gives_the_generic_target(arch: str, variant: str, target: str) -> None:
    platform = {"os": "linux", "architecture": arch, "variant": variant}
    build = describe(annotations=None, config=config(), platform=platform)
    assert (build.architecture, build.variant, build.target) == (arch, variant, target)
    assert build.sources["architecture"] == "index"


def test_index_platform_fields_are_kept() -> None:
    platform = {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1234",
                "os.features": ["win32k"], "features": ["sse4"]}
    build = describe(annotations={}, config=None, platform=platform)
    assert (build.os, build.os_version, build.os_features, build.features) == \
        ("windows", "10.0.17763.1234", ("win32k",), ("sse4",))


def test_annotations_win_over_every_other_source() -> None:
    notes = {platforms.TARGET: "zen4", platforms.CUDA: "12.2", platforms.ROCM: "6.0",
             platforms.MPI: "openmpi@4.1", platforms.MEMORY: "17179869184",
             "org.opencontainers.image.title": "not ours"}
    cfg = spack_config("zen2", [("openmpi", "5.0.3", ["mpi"]), ("cuda", "11.8.0", [])])
    build = describe(annotations=notes, config=cfg, platform={**AMD64, "variant": "v3"})
    assert (build.target, build.cuda, build.rocm, build.mpi, build.memory) == \
        ("zen4", (12, 2), (6, 0), Mpi("openmpi", (4, 1)), 17179869184)
    assert {build.sources[k] for k in ("target", "cuda", "rocm", "mpi", "memory")} == \
        {"annotation"}


def test_an_unknown_target_annotation_falls_back_to_the_variant() -> None:
    build = describe(annotations={platforms.TARGET: "zen99"}, config=None,
                     platform={**AMD64, "variant": "v3"})
    assert (build.target, build.sources["target"]) == ("x86_64_v3", "variant")


def test_a_target_of_another_family_is_an_error() -> None:
    with pytest.raises(PlatformError):
        describe(annotations={platforms.TARGET: "neoverse_v2"}, config=None, platform=AMD64)


@pytest.mark.parametrize(("env", "cuda"), [
    (["NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla,driver>=470,driver<471"], (12, 2)),
    (["CUDA_VERSION=12.4.1"], (12, 4)),
    (["CUDA_VERSION=11.8.0", "NVIDIA_REQUIRE_CUDA=cuda>=11.0"], (11, 0)),
    (["NVIDIA_REQUIRE_CUDA=brand=tesla,driver>=470", "CUDA_VERSION=12.1.0"], (12, 1)),
    (["PATH=/usr/bin", "LANG=C"], None),
])
def test_cuda_from_the_images_environment(env: list[str], cuda: tuple[int, ...] | None) -> None:
    build = describe(annotations={}, config=config(env), platform=None)
    assert build.cuda == cuda
    assert build.sources.get("cuda") == (None if cuda is None else "env")


@pytest.mark.parametrize("target", ["zen3", {"name": "zen3", "vendor": "AuthenticAMD",
                                              "features": ["avx2"], "generation": 0}])
def test_spack_pushed_images_carry_their_specs_target(target: Any) -> None:
    cfg = spack_config(target, [("openmpi", "4.1.6", ["mpi"]), ("cuda", "12.4.0", []),
                                ("zlib", "1.3", [])])
    build = describe(annotations={}, config=cfg, platform=None)
    assert (build.target, build.mpi, build.cuda) == ("zen3", Mpi("openmpi", (4, 1, 6)), (12, 4))
    assert {build.sources[k] for k in ("target", "mpi", "cuda")} == {"spack"}


def test_spack_generic_target_never_weakens_the_variant() -> None:
    # amd64/v3 with a spec built for generic x86_64: the image still needs v3.
    build = describe(annotations={}, config=spack_config("x86_64"),
                     platform={**AMD64, "variant": "v3"})
    assert (build.target, build.sources["target"]) == ("x86_64_v3", "variant")


def test_spack_aarch64_target_and_a_non_numeric_mpi_version() -> None:
    cfg = spack_config("neoverse_v2", [("mpich", "develop", ["mpi"])], architecture="arm64")
    build = describe(annotations={}, config=cfg, platform=None)
    assert (build.target, build.mpi) == ("neoverse_v2", Mpi("mpich"))


def test_a_spack_target_of_another_family_is_an_error() -> None:
    with pytest.raises(PlatformError):
        describe(annotations={}, config=spack_config("neoverse_v2"), platform=None)


def test_candidate_and_fields() -> None:
    build = describe(annotations={platforms.MPI: "openmpi@4.1", platforms.CUDA: "12.2"},
                     config=config(), platform={**AMD64, "variant": "v3",
                                                "os.features": ["a", "b"]})
    cand = candidate("sha256:" + "a" * 64, build)
    assert judge(cand, parse_host("target=zen3&cuda=12.4&mpi=openmpi@4.1.5")).fits
    assert not judge(cand, parse_host("target=zen3")).fits
    flat = fields(build)
    assert flat == {"os": "linux", "architecture": "amd64", "variant": "v3", "os_version": None,
                    "os_features": "a,b", "features": None, "target": "x86_64_v3",
                    "cuda": "12.2", "rocm": None, "mpi": "openmpi@4.1", "memory": None,
                    "sources": "architecture=index,cuda=annotation,mpi=annotation,os=index,"
                               "target=variant"}
    assert json.loads(json.dumps(flat)) == flat
    assert isinstance(build, Build)


@pytest.mark.parametrize(("annotations", "cfg", "platform"), [
    ({}, b"not json", None),
    ({}, b"[1, 2]", None),
    ({}, b"[" * 100_000 + b"]" * 100_000, None),
    ({}, b" " * (MAX_CONFIG + 1), None),
    ({}, config(["CUDA_VERSION=twelve"]), None),
    ({}, json.dumps({"os": "linux", "architecture": "amd64", "config": {"Env": 5}}).encode(), None),
    ({}, json.dumps({"os": "linux", "architecture": "amd64",
                     "config": {"Env": ["A=b"] * 5000}}).encode(), None),
    ({}, json.dumps({"os": "linux", "architecture": "amd64", "config": []}).encode(), None),
    ({}, json.dumps({"os": "linux", "architecture": "amd64", "spec": {"nodes": "x"}}).encode(),
     None),
    ({}, json.dumps({"os": "linux", "architecture": "amd64", "spec": {"nodes": [1]}}).encode(),
     None),
    ({}, json.dumps({"os": "linux", "architecture": "amd64",
                     "spec": {"nodes": [{"arch": {"target": 7}}]}}).encode(), None),
    ({}, json.dumps({"os": 1, "architecture": "amd64"}).encode(), None),
    ({}, b"{}", None),
    ({}, None, {"os": "linux", "architecture": "riscv128"}),
    ({}, None, {"os": "linux", "architecture": "amd64", "features": ["x"] * 100}),
    ({}, None, "amd64"),
    ({platforms.CUDA: "12.x"}, None, AMD64),
    ({platforms.MPI: "Open MPI"}, None, AMD64),
    ({platforms.MEMORY: "-1"}, None, AMD64),
    ({platforms.TARGET: "z" * 1000}, None, AMD64),
    ({platforms.TARGET: 3}, None, AMD64),
    ("annotations", None, AMD64),
])
def test_hostile_input_gives_the_modules_error(annotations: Any, cfg: Any, platform: Any) -> None:
    with pytest.raises(PlatformError):
        describe(annotations=annotations, config=cfg, platform=platform)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["os", "architecture", "variant", "config", "Env", "spec", "nodes",
                         "arch", "target", "name", "hash", "dependencies", "parameters",
                         "virtuals", "version", "features", "os.features"]), inner, max_size=6),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(_json, st.one_of(st.none(), _json), st.dictionaries(
    st.sampled_from(list(platforms.ANNOTATIONS)), st.text(max_size=20), max_size=5))
def test_hostile_documents_raise_only_the_modules_error(doc: Any, platform: Any,
                                                        notes: dict[str, str]) -> None:
    for cfg in (json.dumps(doc).encode(), doc):
        try:
            build = describe(annotations=notes, config=cfg, platform=platform)
        except PlatformError:
            continue
        assert build.target and build.os and build.architecture
