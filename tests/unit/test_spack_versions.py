"""Choosing a cached Spack build for a host: spack's version semantics
(registry.spack.versions, checked against spack 1.1's own module while written) and the
ranking of builds the caller ordered (registry.arch.ordered)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.arch.host import Candidate, Host
from registry.arch.ordered import rank_in_order
from registry.spack.versions import InvalidVersion, SpecQuery, version_key

# Ascending, as spack orders them.
ORDERED = ["1.2rc1", "1.2rc2", "1.2", "1.2a", "1.2.0", "1.2.5", "1.2.10", "1.3", "1.10",
           "2", "stable", "main", "develop"]


def test_versions_sort_as_spack_sorts_them() -> None:
    keys = [version_key(v) for v in ORDERED]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert version_key("1.2-5") == version_key("1.2.5")  # separators do not count
    assert version_key("abc=1.2") == version_key("1.2")  # a git version sorts as its own


@pytest.mark.parametrize(("spec", "holds", "not_held"), [
    ("zlib", ["1.2", "develop"], []),
    ("zlib@1.2", ["1.2", "1.2.0", "1.2.13", "1.2a"], ["1.3", "1.20", "1.1.9", "1.2rc1"]),
    ("zlib@=1.2", ["1.2"], ["1.2.13", "1.2.0"]),
    ("zlib@1.2:1.4", ["1.2", "1.3.1", "1.4", "1.4.99"], ["1.1", "1.5", "1.5rc1x"]),
    ("zlib@1.2:", ["1.2", "9", "develop"], ["1.1.9"]),
    ("zlib@:1.2", ["0.1", "1.2.9"], ["1.3"]),
    ("zlib@1.2,1.4", ["1.2.1", "1.4"], ["1.3"]),
    ("zlib@:", ["0", "develop"], []),
    ("zlib@develop", ["develop"], ["main", "1.0"]),
])
def test_version_constraints_match_as_in_spack(spec: str, holds: list[str],
                                                not_held: list[str]) -> None:
    query = SpecQuery.parse(spec)
    assert query.name == "zlib"
    assert [v for v in holds if not query.matches(v)] == []
    assert [v for v in not_held if query.matches(v)] == []


@pytest.mark.parametrize("spec", [
    "", "Zlib", "zlib@", "zlib@1.4:1.2", "zlib@1:2:3", "zlib@1.2@1.3", "zlib@%", "../x",
    "zlib@" + ",".join(["1"] * 17), "z" * 300, "zlib@=", "zlib@1..2/", "zlib target=zen3",
])
def test_bad_specs_give_the_modules_error(spec: str) -> None:
    with pytest.raises(InvalidVersion):
        SpecQuery.parse(spec)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_gives_invalid_version(text: str) -> None:
    try:
        query = SpecQuery.parse(text)
    except InvalidVersion:
        return
    assert query.matches("1.0") in (True, False)


def test_a_version_spack_would_not_write_never_matches() -> None:
    assert not SpecQuery.parse("zlib@1:").matches("1.0 ; rm")
    with pytest.raises(InvalidVersion):
        version_key("")


def _ranked(targets: list[str], host: str, **kwargs: bool) -> list[tuple[str, int | None]]:
    candidates = [Candidate(f"h{n}", "debian12", t) for n, t in enumerate(targets)]
    verdicts = rank_in_order(candidates, Host(os="debian12", target=host), **kwargs)
    return [(v.candidate.target, v.rank) for v in verdicts]


def test_the_most_specific_fitting_target_wins_then_the_order_given() -> None:
    # Newest first as the caller ordered them: x86_64_v3 twice (two versions).
    targets = ["x86_64_v3", "zen4", "x86_64_v2", "x86_64_v3", "zen2", "haswell", "neoverse_v2"]
    assert _ranked(targets, "zen3") == [
        ("zen2", 1), ("x86_64_v3", 2), ("x86_64_v3", 3), ("x86_64_v2", 4),
        ("zen4", None), ("haswell", None), ("neoverse_v2", None)]
    candidates = [Candidate("new", "debian12", "x86_64_v3"),
                  Candidate("old", "debian12", "x86_64_v3")]
    verdicts = rank_in_order(candidates, Host(os="debian12", target="zen3"))
    assert [v.candidate.digest for v in verdicts] == ["new", "old"]  # the order given
    # A v2-only host takes the generic build.
    assert _ranked(targets, "x86_64_v2")[0] == ("x86_64_v2", 1)


def test_other_os_and_unknown_targets_do_not_fit_and_say_why() -> None:
    candidates = [Candidate("a", "rhel8", "x86_64_v3"), Candidate("b", "debian12", "zen99"),
                  Candidate("c", "debian12", ""), Candidate("d", "debian12", "x" * 9000)]
    verdicts = rank_in_order(candidates, Host(os="debian12", target="zen3"))
    assert [v.fits for v in verdicts] == [False] * 4
    assert "rhel8" in verdicts[0].reason and "archspec does not know" in verdicts[1].reason
    assert len(verdicts[3].reason) < 200
    # A host that gave no OS takes builds of any OS.
    anyos = rank_in_order(candidates[:1], Host(os="", target="zen3"), any_os=True)
    assert anyos[0].fits and anyos[0].rank == 1 and anyos[0].candidate.os == "rhel8"
