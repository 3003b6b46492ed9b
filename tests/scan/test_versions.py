"""Each ecosystem's version order as the advisory matcher uses it (registry/scan/versions.py),
held to the package managers' own answers: dpkg's on this machine, and the test vectors
of rpm, apk-tools and packaging (PEP 440)."""

from __future__ import annotations

import subprocess

import pytest

from registry.scan.versions import UnknownOrder, parse_version, repo_key

# Epochs, tildes (before anything, even the end), revisions, letters, `+` and `.`.
DPKG_PAIRS = [
    ("1.0", "1.0"), ("1.0", "1.1"), ("1.0", "1.0-1"), ("1.0-1", "1.0-2"),
    ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~rc2"), ("1.0~~", "1.0~"), ("1.0~", "1.0"),
    ("1.0~rc1-1", "1.0-1"), ("1:1.0", "2.0"), ("1:1.0", "1:1.1"), ("2:0.1", "1:9.9"),
    ("0:1.0", "1.0"), ("1.0a", "1.0"), ("1.0a", "1.0b"), ("1.0+b1", "1.0"),
    ("1.0+dfsg-1", "1.0-1"), ("1.0.1", "1.0+x"), ("1.0-1+deb12u1", "1.0-1"),
    ("1.0-1+deb12u1", "1.0-1+deb12u2"), ("1.0-1~bpo12+1", "1.0-1"), ("2.36-9+deb12u4",
    "2.36-9+deb12u10"), ("3.0.11-1~deb12u2", "3.0.11-1"), ("3.0.13-1~deb12u1", "3.0.11-1"),
    ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12"), ("1.2.13.dfsg-1", "1:1.2.13.dfsg-1"),
    ("9", "10"), ("1.10", "1.9"), ("1.001", "1.1"), ("1.0.0", "1.0"), ("1a", "1b"),
    ("1.0-0", "1.0"), ("1.0-a", "1.0-b"), ("1.0-1.1", "1.0-1a"), ("1.2.3-4ubuntu1",
    "1.2.3-4"), ("1.2.3-4ubuntu1", "1.2.3-4ubuntu1.1"), ("0.9.8-1", "0.10-1"),
    ("4.19.0", "4.19.0~rc5"), ("1:2.3", "1:2.3~"), ("5.2.15-2+b2", "5.2.15-2+b10"),
    ("2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3"), ("1.0+git20230101", "1.0"),
    ("1.0~git20230101", "1.0"), ("10:1", "9:100"), ("1.2-3-4", "1.2-3-5"),
    ("1:1.2", "1.3"), ("1.0.", "1.0"), ("1.0+", "1.0."), ("1.0~a", "1.0~b"),
    ("2.0", "2.0-0"),
]


def test_debian_order_is_dpkgs() -> None:
    # One shell for every pair: dpkg --compare-versions answers through its exit code.
    script = "".join(
        f"if dpkg --compare-versions '{a}' lt '{b}'; then echo lt; "
        f"elif dpkg --compare-versions '{a}' eq '{b}'; then echo eq; else echo gt; fi\n"
        for a, b in DPKG_PAIRS)
    answers = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                             check=True).stdout.split()
    assert len(answers) == len(DPKG_PAIRS)
    for (a, b), dpkg in zip(DPKG_PAIRS, answers, strict=True):
        va, vb = parse_version("Debian:12", a), parse_version("Debian:12", b)
        # By < and > only: univers's == compares the normalised text (1.001 != 1.1),
        # its orderings are dpkg's; matching uses orderings alone.
        ours = "lt" if va < vb else "gt" if va > vb else "eq"
        assert ours == dpkg, (a, b)


# rpm's tests/rpmvercmp.at (RPMVERCMP(a, b, expected)), the vectors rpmvercmp is held to.
RPM_VECTORS = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1), ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1), ("2.0.1", "2.0", 1), ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1),
    ("2.0.1", "2.0.1a", -1), ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1),
    ("5.5p2", "5.5p1", 1), ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1),
    ("5.5p10", "5.5p1", 1), ("10xyz", "10.1xyz", -1), ("10.1xyz", "10xyz", 1),
    ("xyz10", "xyz10", 0), ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1),
    ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1), ("8", "xyz.4", 1), ("xyz.4", "2", -1),
    ("2", "xyz.4", 1), ("5.5p2", "5.6p1", -1), ("5.6p1", "5.5p2", 1), ("5.6p1", "6.5p1", -1),
    ("6.5p1", "5.6p1", 1), ("6.0.rc1", "6.0", 1), ("6.0", "6.0.rc1", -1),
    ("10b2", "10a1", 1), ("10a2", "10b2", -1), ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1),
    ("1.0aa", "1.0a", 1), ("10.0001", "10.0001", 0), ("10.0001", "10.1", 0),
    ("10.1", "10.0001", 0), ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1), ("20101121", "20101121", 0),
    ("20101121", "20101122", -1), ("20101122", "20101121", 1), ("2_0", "2_0", 0),
    ("2.0", "2_0", 0), ("2_0", "2.0", 0), ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0~rc1", 1), ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc2", "1.0~rc1", 1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1), ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1),
    ("1.0", "1.0^", -1), ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1),
    ("1.0", "1.0^git1", -1), ("1.0^git1", "1.0^git2", -1), ("1.0^git1", "1.01", -1),
    ("1.0^20160101", "1.0.1", -1), ("1.0~rc1", "1.0~rc1^git1", -1),
    # With epochs and releases, as rpm databases and OSV records spell them.
    ("1:3.0.7-27.el9", "3.0.7-28.el9", 1), ("3.0.7-27.el9", "3.0.7-27.el9_5.1", -1),
]

# apk-tools test/version.data ("a OP b" lines).
APK_VECTORS = [
    ("2.34", "0.1.0_alpha", 1), ("0.1.0_alpha", "0.1.0_alpha", 0),
    ("0.1.0_alpha", "0.1.3_alpha", -1), ("0.1.3_alpha", "0.1.0_alpha", 1),
    ("0.1.0_alpha2", "0.1.0_alpha", 1), ("0.1.0_alpha", "0.1.0_alpha2", -1),
    ("0.1.0_alpha2", "0.1.0_beta", -1), ("1.0_rc1", "1.0", -1), ("1.0_p1", "1.0", 1),
    ("1.0-r1", "1.0", 1), ("1.0-r1", "1.0-r2", -1), ("1.0-r9", "1.0-r10", -1),
    ("1.0a", "1.0", 1), ("1.0_pre1", "1.0_rc1", -1), ("1.0_alpha1", "1.0_beta1", -1),
    ("3.1.4-r0", "3.1.4-r5", -1),
    # apk's post-release suffixes (univers lacks them; versions.py maps them to _p).
    ("1.2.3_git20230101-r0", "1.2.3-r0", 1), ("1.2.3_git20230101-r0", "1.2.4-r0", -1),
    ("0_git20230101-r1", "0_git20230202-r0", -1),
]

# packaging's tests/test_version.py VERSIONS: PEP 440's order, each before the next.
PEP440_ORDER = [
    "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456",
    "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345", "1.0c1.dev456", "1.0c1", "1.0rc2",
    "1.0c3", "1.0", "1.0.post456.dev34", "1.0.post456", "1.1.dev1", "1.2+123abc",
    "1.2+123abc456", "1.2+abc", "1.2+abc123", "1.2+abc123def", "1.2+1234.abc", "1.2+123456",
    "1.2.r32+123456", "1.2.rev33+123456",
    "1!1.0.dev456", "1!1.0a1", "1!1.0", "1!1.0.post456", "1!1.2.rev33+123456",
]


def _cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


@pytest.mark.parametrize(("a", "b", "want"), RPM_VECTORS)
def test_rpm_order(a: str, b: str, want: int) -> None:
    assert _cmp(parse_version("Red Hat:9", a), parse_version("AlmaLinux:9", b)) == want


@pytest.mark.parametrize(("a", "b", "want"), APK_VECTORS)
def test_apk_order(a: str, b: str, want: int) -> None:
    assert _cmp(parse_version("Alpine:v3.19", a), parse_version("Alpine", b)) == want


def test_pep440_order() -> None:
    parsed = [parse_version("PyPI", v) for v in PEP440_ORDER]
    for lower, higher, text in zip(parsed, parsed[1:], PEP440_ORDER[1:], strict=False):
        assert lower < higher, text
    assert _cmp(parse_version("PyPI", "1.0"), parse_version("PyPI", "1.0.0")) == 0


def test_semver_go_cran_and_unknown() -> None:
    assert parse_version("npm", "1.0.0-alpha") < parse_version("npm", "1.0.0")
    assert parse_version("crates.io", "0.9.10") > parse_version("crates.io", "0.9.9")
    assert parse_version("Go", "v1.21.5") < parse_version("Go", "1.22.0")
    assert parse_version("CRAN", "1.2-10") > parse_version("CRAN", "1.2-9")
    assert parse_version("x", "1.0", "SEMVER") < parse_version("x", "v1.0.1", "SEMVER")
    with pytest.raises(UnknownOrder):
        parse_version("NoSuchEcosystem", "1.0")
    with pytest.raises(UnknownOrder):
        parse_version("Debian:12", "not a version!")


def test_repo_key() -> None:
    assert repo_key("https://GitHub.com/madler/zlib.git/") == "github.com/madler/zlib"
    assert repo_key("git@github.com:curl/curl.git") == "github.com/curl/curl"
    assert repo_key("git://gitlab.gnome.org/GNOME/libxml2") == "gitlab.gnome.org/GNOME/libxml2"
