"""What a node must offer (registry.arch.requirements): archspec's features of the target
as node-feature-discovery labels, the CUDA node affinity, the Slurm constraint."""

from __future__ import annotations

import pytest

from registry.arch.describe import describe
from registry.arch.host import Mpi
from registry.arch.platforms import PlatformError
from registry.arch.requirements import NFD, Need, nfd_flag, slurm_alternatives
from registry.index.records import BuildRow


def test_an_x86_64_v3_cuda_build_as_labels_affinity_and_slurm() -> None:
    build = describe(annotations=None, platform=None, config={
        "os": "linux", "architecture": "amd64", "variant": "v3",
        "config": {"Env": ["NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla"]}})
    need = Need.from_build(build)
    assert need.target == "x86_64_v3" and "avx2" in need.cpu_features
    labels = need.labels()
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    flags = {k.removeprefix(NFD) for k in labels if k.startswith(NFD)}
    # fma is FMA3 to NFD; BMI1, F16C, SSE42 are in NFD's default blacklist: no such label.
    assert flags == {"AVX", "AVX2", "FMA3", "MOVBE", "LAHF", "XSAVE"}, flags
    assert labels["nvidia.com/gpu.present"] == "true"
    terms = need.node_affinity()
    assert len(terms) == 2  # a newer CUDA major, or 12 with minor >= 2
    newer, same = (t["matchExpressions"][-2:] for t in terms)
    assert newer[-1] == {"key": "nvidia.com/cuda.runtime-version.major", "operator": "Gt",
                         "values": ["12"]}
    assert same == [{"key": "nvidia.com/cuda.runtime-version.major", "operator": "In",
                     "values": ["12"]},
                    {"key": "nvidia.com/cuda.runtime-version.minor", "operator": "Gt",
                     "values": ["1"]}]
    assert need.slurm_constraint() == "x86_64_v3&cuda12"
    doc = need.to_json()
    assert doc["cuda"] == "12.2" and doc["slurm"]["mem"] is None
    assert doc["sources"]["cuda"] == "env"


def test_grace_mpi_and_memory() -> None:
    need = Need("linux", "arm64", "neoverse_v2", mpi=Mpi("openmpi", (4, 1)), memory=3 << 30)
    labels = need.labels()
    assert labels["kubernetes.io/arch"] == "arm64"
    assert {NFD + "ASIMD", NFD + "SVE", NFD + "AESARM", NFD + "FHM"} <= set(labels)
    assert NFD + "SVE2" not in labels  # NFD has no name for it
    assert need.node_affinity() == [{"matchExpressions": [
        {"key": k, "operator": "In", "values": [v]} for k, v in labels.items()]}]
    assert need.slurm_constraint() == "neoverse_v2&openmpi4"
    assert need.to_json()["slurm"]["mem"] == "3072M"


def test_an_index_is_any_of_its_builds() -> None:
    v3 = Need("linux", "amd64", "x86_64_v3")
    cuda = Need("linux", "amd64", "x86_64_v3", cuda=(12, 2))
    grace = Need("linux", "arm64", "neoverse_v2")
    assert slurm_alternatives([v3, cuda, grace, v3]) == (
        "x86_64_v3|(x86_64_v3&cuda12)|neoverse_v2")
    assert slurm_alternatives([cuda]) == "x86_64_v3&cuda12"
    assert slurm_alternatives([]) == ""


def test_nfd_names_per_family() -> None:
    assert nfd_flag("x86_64", "sse4_2") == "SSE42" and nfd_flag("x86_64", "aes") == "AESNI"
    assert nfd_flag("aarch64", "aes") == "AESARM" and nfd_flag("x86_64", "sha512") is None
    assert nfd_flag("ppc64le", "altivec") is None


def _row(**kw: object) -> BuildRow:
    base: dict = {"repo": "r", "digest": "d", "declared_by": "d", "entry": 0,
                  "source": "config", "os": "linux", "architecture": "amd64",
                  "target": "zen3", "sources": {"target": "annotation"}}
    return BuildRow(**{**base, **kw})


def test_index_rows_become_needs_and_bad_ones_are_refused() -> None:
    need = Need.from_columns(_row(cuda="12.4", mpi="mpich@4", memory=1024))
    assert (need.target, need.cuda, need.mpi, need.memory) == ("zen3", (12, 4),
                                                               Mpi("mpich", (4,)), 1024)
    assert need.sources == {"target": "annotation"}
    for bad in ({"target": "zen99"}, {"target": None}, {"cuda": "x"}, {"mpi": "@@"}):
        with pytest.raises(PlatformError):
            Need.from_columns(_row(**bad))
