"""Architecture awareness (registry.arch): platform -> target, fit against archspec's
order, CUDA/MPI rules, ranking, and the host query string's parser under hostile input."""

from __future__ import annotations

import archspec.cpu
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.arch import platforms
from registry.arch.fit import best, cuda_fits, judge, mpi_fits, rank, target_fits
from registry.arch.host import Candidate, Host, HostError, Mpi, parse_host, parse_version
from registry.arch.platforms import PlatformError, generic_target, platform_target


@pytest.mark.parametrize(("arch", "variant", "target"), [
    ("amd64", "", "x86_64"), ("amd64", "v1", "x86_64"), ("amd64", "v2", "x86_64_v2"),
    ("amd64", "v3", "x86_64_v3"), ("amd64", "v4", "x86_64_v4"),
    ("arm64", "", "aarch64"), ("arm64", "v8", "aarch64"), ("arm64", "v9", "armv9.0a"),
    ("ppc64le", "", "ppc64le"),
])
def test_platform_implies_archspec_target(arch: str, variant: str, target: str) -> None:
    assert generic_target(arch, variant) == target
    assert target in archspec.cpu.TARGETS


def test_explicit_target_annotation_wins_when_archspec_knows_it() -> None:
    assert platform_target("amd64", "v3", {platforms.TARGET: "zen4"}) == "zen4"
    # One from a newer archspec falls back to the variant's generic target.
    assert platform_target("amd64", "v3", {platforms.TARGET: "zen99"}) == "x86_64_v3"
    with pytest.raises(PlatformError):
        platform_target("amd64", "", {platforms.TARGET: "neoverse_v2"})


def test_annotation_keys_share_one_prefix() -> None:
    assert all(key.startswith(platforms.PREFIX) for key in platforms.ANNOTATIONS)
    assert len(set(platforms.ANNOTATIONS)) == 5


@pytest.mark.parametrize(("arch", "variant"), [
    ("riscv64", ""), ("amd64", "v5"), ("arm64", "v7"), ("x" * 10_000, ""), ("amd64", "\x00"),
])
def test_unknown_platforms_give_the_modules_error(arch: str, variant: str) -> None:
    with pytest.raises(PlatformError):
        generic_target(arch, variant)


# (build, host, fits): checked against archspec's own order, not a table of ours.
TABLE = [
    ("x86_64", "haswell", True), ("x86_64_v2", "haswell", True),
    ("x86_64_v3", "haswell", True), ("x86_64_v4", "haswell", False),
    ("x86_64_v3", "zen2", True), ("x86_64_v3", "zen3", True), ("x86_64_v4", "zen3", False),
    ("x86_64_v4", "zen4", True), ("zen3", "zen4", True), ("zen4", "zen3", False),
    ("zen2", "zen3", True), ("haswell", "skylake_avx512", True),
    ("skylake_avx512", "icelake", True), ("icelake", "sapphirerapids", True),
    ("sapphirerapids", "icelake", False), ("x86_64_v4", "sapphirerapids", True),
    ("x86_64_v4", "skylake_avx512", True), ("skylake_avx512", "haswell", False),
    ("zen3", "sapphirerapids", False), ("haswell", "zen3", False),
    ("aarch64", "neoverse_v1", True), ("aarch64", "neoverse_v2", True),
    ("armv9.0a", "neoverse_v2", True), ("armv9.0a", "neoverse_v1", False),
    ("neoverse_v1", "neoverse_v2", False), ("aarch64", "a64fx", True),
    ("a64fx", "neoverse_v1", False),
    ("ppc64le", "power9le", True), ("power8le", "power9le", True),
    ("power9le", "power8le", False), ("power10le", "power9le", False),
]


@pytest.mark.parametrize(("build", "host", "fits"), TABLE)
def test_resolution_table_against_archspec(build: str, host: str, fits: bool) -> None:
    ok, reason = target_fits(build, host)
    assert ok is fits, reason
    tb, th = archspec.cpu.TARGETS[build], archspec.cpu.TARGETS[host]
    assert ok is (tb == th or tb in th.ancestors)
    assert reason


def test_reasons_say_why_in_words() -> None:
    assert target_fits("zen3", "zen3") == (True, "zen3 is the host's target")
    assert target_fits("x86_64_v3", "zen3") == (True, "x86_64_v3 is an ancestor of zen3")
    ok, reason = target_fits("zen4", "zen3")
    assert not ok and "avx512" in reason and reason.endswith("not on zen3")


@pytest.mark.parametrize("build", ["x86_64", "zen4", "aarch64", "neoverse_v2", "ppc64le"])
@pytest.mark.parametrize("host", ["zen3", "a64fx", "power9le"])
def test_cross_family_never_fits(build: str, host: str) -> None:
    if archspec.cpu.TARGETS[build].family == archspec.cpu.TARGETS[host].family:
        return
    ok, reason = target_fits(build, host)
    assert not ok and "the host is" in reason


def test_cuda_rule() -> None:
    assert cuda_fits(None, None)[0]
    assert cuda_fits((12, 2), (12, 4))[0]
    assert cuda_fits((12, 4), (12, 4))[0]
    assert not cuda_fits((12, 4), (12, 2))[0]
    assert not cuda_fits((11, 8), None)[0]
    assert cuda_fits((11, 8), (12,))[0]


def test_mpi_rule() -> None:
    assert mpi_fits(Mpi.parse("openmpi@4.1"), Mpi.parse("openmpi@4.1.5"))[0]
    assert mpi_fits(Mpi.parse("openmpi"), Mpi.parse("openmpi@5.0"))[0]
    assert not mpi_fits(Mpi.parse("openmpi@4.1"), Mpi.parse("openmpi@4.10"))[0]
    assert not mpi_fits(Mpi.parse("openmpi@4.1"), Mpi.parse("mpich@4.1"))[0]
    assert not mpi_fits(Mpi.parse("mpich"), None)[0]
    assert mpi_fits(None, None)[0]


def _c(digest: str, target: str, cuda: str | None = None, mpi: str | None = None) -> Candidate:
    return Candidate(digest, "linux", target, parse_version(cuda) if cuda else None,
                     mpi=Mpi.parse(mpi) if mpi else None)


def test_ranking_most_specific_then_gpu_then_generic() -> None:
    offer = [
        _c("generic", "x86_64"), _c("v3", "x86_64_v3"), _c("v3-cuda11", "x86_64_v3", "11.8"),
        _c("v3-cuda12.2", "x86_64_v3", "12.2"), _c("v3-cuda12.6", "x86_64_v3", "12.6"),
        _c("zen3", "zen3"), _c("zen4", "zen4"), _c("v4", "x86_64_v4"),
        _c("neoverse", "neoverse_v2"),
    ]
    host = parse_host("os=linux&arch=amd64&target=zen3&cuda=12.4")
    ranked = rank(offer, host)
    fitting = [v.candidate.digest for v in ranked if v.fits]
    assert fitting == ["zen3", "v3-cuda12.2", "v3-cuda11", "v3", "generic"]
    assert [v.rank for v in ranked if v.fits] == [1, 2, 3, 4, 5]
    assert {v.candidate.digest for v in ranked if not v.fits} == {
        "v3-cuda12.6", "zen4", "v4", "neoverse"}
    assert all(v.rank is None for v in ranked if not v.fits)
    assert best(offer, host) == offer[5]


def test_cuda_fallback_to_cpu_build_when_driver_too_old_or_absent() -> None:
    offer = [_c("gpu", "x86_64_v3", "12.6"), _c("cpu", "x86_64_v3")]
    assert best(offer, parse_host("target=zen3&cuda=12.0")) == offer[1]
    assert best(offer, parse_host("target=zen3")) == offer[1]
    assert best(offer, parse_host("target=zen3&cuda=12.8")) == offer[0]


def test_nothing_fits_gives_none_and_reasons() -> None:
    offer = [_c("zen4", "zen4"), _c("arm", "neoverse_v2")]
    host = parse_host("target=haswell")
    assert best(offer, host) is None
    assert all(not v.fits and v.reason for v in rank(offer, host))
    assert not judge(Candidate("w", "windows", "x86_64"), host).fits


def test_parse_host_full_query() -> None:
    host = parse_host("os=linux&arch=amd64&target=zen3&cuda=12.4&mpi=openmpi@4.1"
                      "&features=avx512f,sve")
    assert host == Host("linux", "zen3", (12, 4), None, Mpi("openmpi", (4, 1)),
                        frozenset({"avx512f", "sve"}))
    assert parse_host("arch=arm64&variant=v9").target == "armv9.0a"
    assert parse_host("").target == "x86_64"


@pytest.mark.parametrize("query", [
    "arch=amd64&arch=arm64", "target=zen99", "cuda=12..4", "cuda=1234567", "mpi=@4",
    "bogus=1", "target", "arch=arm64&target=zen3", "features=" + ",".join(["a"] * 100),
    "x" * 5000, "os=lin ux", "target=%00", "cuda=", "mpi=openmpi@4.1@2",
])
def test_parse_host_rejects_bad_queries(query: str) -> None:
    with pytest.raises(HostError):
        parse_host(query)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_hostile_queries_raise_only_the_modules_error(query: str) -> None:
    try:
        parse_host(query)
    except HostError:
        pass


# pci values that parse, so the structured test reaches past the first bad value
_PCI_LIST = r"[0-9a-fA-F]{4}[:.][0-9a-fA-F]{4}(,[0-9a-f]{4}:[0-9a-f]{4}){0,3}"
_pairs = st.lists(st.tuples(
    st.sampled_from(["os", "arch", "variant", "target", "cuda", "rocm", "mpi", "features",
                     "vendor", "kernel", "glibc", "pci", "x"]),
    st.text(max_size=40) | st.from_regex(_PCI_LIST, fullmatch=True)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_pairs)
def test_hostile_structured_queries_raise_only_the_modules_error(pairs: list) -> None:
    query = "&".join(f"{k}={v}" for k, v in pairs)
    try:
        host = parse_host(query)
    except HostError:
        return
    assert host.target in archspec.cpu.TARGETS


@pytest.mark.parametrize("value", [None, 12, b"12.4", "12.a", "1.2.3.4.5"])
def test_parse_version_rejects_non_versions_with_the_modules_error(value: object) -> None:
    with pytest.raises(HostError):
        parse_version(value)  # type: ignore[arg-type]
