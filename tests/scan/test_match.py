"""Matching packages against imported OSV advisories (registry/scan/match.py): each
ecosystem's order, Debian source packages, releases, last_affected, explicit versions,
withdrawn records, GIT records through the Spack mapping table, and severity."""

from __future__ import annotations

import pytest

from registry.cli import main
from registry.scan import spack_map
from registry.scan.advisories import AdvisoryDB, import_path
from registry.scan.match import Matcher, PackageRef, max_severity
from registry.scan.severity import score_vector, severity
from tests.scan.osvdocs import CVSS_CRITICAL, advisory, git_advisory, write_dir

CVSS4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3

DOCS = [
    # Debian's records name the source package, per release.
    advisory("DSA-5678-1", "Debian:12", "openssl", fixed="3.0.13-1~deb12u1",
             aliases=["CVE-2024-0727"], severity=[{"type": "CVSS_V3",
                                                   "score": CVSS_CRITICAL}]),
    advisory("DSA-5678-2", "Debian:11", "openssl", fixed="1.1.1w-0+deb11u2"),
    advisory("ALPINE-CVE-2024-0727", "Alpine:v3.19", "openssl", fixed="3.1.4-r5"),
    advisory("ALSA-2024:1234", "AlmaLinux:9", "openssl-libs", fixed="1:3.0.7-27.el9",
             database_specific={"severity": "Important"}),
    # Red Hat's records name a product stream, and rate in their own words.
    advisory("RHSA-2024:2447", "Red Hat:enterprise_linux:9::appstream", "openssl",
             fixed="1:3.0.7-27.el9", severity=[{"type": "Red Hat", "score": "moderate"}]),
    advisory("RHSA-2024:0001", "Red Hat:rhel_eus:9.2::baseos", "openssl", fixed="1:9"),
    advisory("GHSA-h5c8-rqwp-cp95", "PyPI", "Jinja2", introduced="0", fixed="3.1.3",
             database_specific={"severity": "MODERATE"},
             severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/bogus"}]),
    advisory("PYSEC-2099-1", "PyPI", "requests", introduced="9", versions=["2.31.0"]),
    advisory("GHSA-last-affe-cted", "npm", "lodash", introduced="1.0.0",
             last_affected="1.2.0", severity=[{"type": "CVSS_V4", "score": CVSS4},
                                              {"type": "CVSS_V3", "score": CVSS_CRITICAL}]),
    advisory("GHSA-with-draw-nnnn", "npm", "lodash", withdrawn="2024-03-01T00:00:00Z"),
    git_advisory("CVE-2023-46218", "https://github.com/curl/curl.git",
                 ["curl-8_4_0", "curl-8_5_0"]),
    git_advisory("CVE-2024-9999", "https://github.com/curl/curl", ["curl-8_5_0"],
                 withdrawn="2024-03-01T00:00:00Z"),
    git_advisory("CVE-2023-45853", "https://github.com/madler/zlib", ["v1.2.13", "v1.3"]),
    git_advisory("CVE-2023-5678", "https://github.com/openssl/openssl",
                 ["openssl-3.0.11", "OpenSSL_1_1_1w"]),
    git_advisory("CVE-2024-0000", "https://github.com/HDFGroup/hdf5", ["hdf5-1_14_3"]),
]


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    root = tmp_path_factory.mktemp("osv")
    with AdvisoryDB(str(root / "advisories.sqlite")) as db:
        report = import_path(db, write_dir(str(root / "docs"), DOCS))
        assert report.imported == len(DOCS) and not report.rejected
        yield Matcher(db, spack_map.load())


def ids(found) -> list[str]:
    return [m.id for m in found]


def test_debian_by_source_package_and_release(matcher: Matcher) -> None:
    libssl = PackageRef("deb", "libssl3", "3.0.11-1~deb12u2", "openssl")
    found = matcher.match(libssl, "Debian:12")
    assert ids(found) == ["DSA-5678-1"]  # not Debian 11's record
    (m,) = found
    assert (m.fixed, m.aliases, m.severity.level, m.severity.score) == (
        "3.0.13-1~deb12u1", ("CVE-2024-0727",), "critical", 9.8)
    assert matcher.match(PackageRef("deb", "libssl3", "3.0.13-1~deb12u1", "openssl"),
                         "Debian:12") == []
    assert matcher.match(libssl, None) == []  # no release known: no OS records apply
    assert ids(matcher.match(PackageRef("deb", "openssl", "1.1.1n-0+deb11u5", "openssl"),
                             "Debian:11")) == ["DSA-5678-2"]


def test_alpine_and_rpm(matcher: Matcher) -> None:
    found = matcher.match(PackageRef("apk", "libcrypto3", "3.1.4-r0", "openssl"),
                          "Alpine:v3.19")
    assert [(m.id, m.fixed) for m in found] == [("ALPINE-CVE-2024-0727", "3.1.4-r5")]
    assert matcher.match(PackageRef("apk", "libcrypto3", "3.1.4-r5", "openssl"),
                         "Alpine:v3.19") == []
    assert matcher.match(PackageRef("apk", "libcrypto3", "3.1.4-r0", "openssl"),
                         "Alpine:v3.18") == []
    rpm = PackageRef("rpm", "openssl-libs", "1:3.0.7-25.el9", "openssl")
    (m,) = matcher.match(rpm, "AlmaLinux:9")
    assert (m.id, m.severity.level, m.fixed) == ("ALSA-2024:1234", "high", "1:3.0.7-27.el9")
    rhel = PackageRef("rpm", "openssl", "1:3.0.7-24.el9", "openssl")
    assert [(m.id, m.severity.level) for m in matcher.match(rhel, "Red Hat:9")] == \
        [("RHSA-2024:2447", "medium")]
    assert matcher.match(rhel, "Red Hat:8") == []
    # A later build than the fixed one is not affected.
    assert matcher.match(PackageRef("rpm", "openssl-libs", "1:3.0.7-27.el9_5"),
                         "AlmaLinux:9") == []


def test_pypi_names_ranges_and_versions_lists(matcher: Matcher) -> None:
    (m,) = matcher.match(PackageRef("pypi", "jinja2", "3.1.2"))
    # A vector that does not score falls back to the database's word.
    assert (m.id, m.fixed, m.severity.level, m.severity.score) == (
        "GHSA-h5c8-rqwp-cp95", "3.1.3", "medium", None)
    assert matcher.match(PackageRef("pypi", "Jinja2", "3.1.3")) == []
    # An explicit versions list names versions no range holds.
    assert ids(matcher.match(PackageRef("pypi", "Requests", "2.31.0"))) == ["PYSEC-2099-1"]
    assert matcher.match(PackageRef("pypi", "requests", "2.31.1")) == []


def test_last_affected_and_withdrawn(matcher: Matcher) -> None:
    for version, hit in (("0.9.0", False), ("1.0.0", True), ("1.2.0", True),
                         ("1.2.1", False)):
        found = matcher.match(PackageRef("npm", "lodash", version))
        assert ids(found) == (["GHSA-last-affe-cted"] if hit else []), version
    (m,) = matcher.match(PackageRef("npm", "lodash", "1.1.0"))
    assert (m.severity.level, m.severity.score, m.severity.vector) == ("critical", 9.3, CVSS4)


def test_spack_through_the_table(matcher: Matcher) -> None:
    def spack(name: str, version: str) -> list[str]:
        return ids(matcher.match(PackageRef("spack", name, version)))

    assert spack("curl", "8.5.0") == ["CVE-2023-46218"]  # not the withdrawn one
    assert spack("curl", "8.6.0") == []
    assert spack("zlib", "1.3") == ["CVE-2023-45853"]
    assert spack("openssl", "3.0.11") == ["CVE-2023-5678"]
    assert spack("openssl", "1.1.1w") == ["CVE-2023-5678"]
    assert spack("hdf5", "1.14.3") == ["CVE-2024-0000"]
    assert spack("py-jinja2", "3.1.2") == ["GHSA-h5c8-rqwp-cp95"]
    assert spack("py-jinja2", "3.1.4") == []
    assert spack("no-such-package", "1.0") == []


def test_spack_table_extends_and_refuses(tmp_path, capsys) -> None:
    extra = tmp_path / "site.toml"
    extra.write_text('[packages.mylib]\nrepos = ["https://example.org/mylib.git"]\n'
                     'tags = ["release-{version-}"]\n'
                     '[packages.zlib]\necosystem = "Debian"\nname = "zlib"\n')
    table = spack_map.load([str(extra)])
    assert table.lookup("mylib").tag_names("1.2.3") == ["release-1-2-3"]
    assert table.lookup("zlib").repos == ()  # the site's entry replaces the shipped one
    assert table.lookup("py-Foo.Bar").name == "foo-bar"
    assert table.lookup("r-ggplot2").ecosystem == "CRAN"
    shipped = spack_map.load()
    for name in ("zlib", "openssl", "curl", "libxml2", "hdf5", "openmpi", "python"):
        assert shipped.lookup(name).repos, name
    extra.write_text('[packages.bad]\ntags = ["v{version}"]\n')
    with pytest.raises(spack_map.MapError, match="repos and tags go together"):
        spack_map.load([str(extra)])
    # `registry config check` (and a start) refuse the file with the same parser.
    conf = tmp_path / "registry.toml"
    conf.write_text(f'[scan]\nspack_map = ["{extra}"]\n')
    assert main(["config", "check", str(conf)]) == 1
    assert "repos and tags go together" in capsys.readouterr().err


def test_severity_scoring() -> None:
    assert score_vector("CVSS_V3", CVSS_CRITICAL).score == 9.8
    assert score_vector("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N").level \
        == "low"
    assert score_vector("CVSS_V3", "nonsense") is None
    assert severity([("CVSS_V3", CVSS_CRITICAL), ("CVSS_V4", CVSS4)]).score == 9.3
    assert severity([("Ubuntu", "negligible")]).level == "low"
    assert severity([], ["Moderate"]).level == "medium"
    assert severity([], ["whatever"]).level == "unknown"


def test_max_severity_and_cli(matcher: Matcher, tmp_path, capsys) -> None:
    found = matcher.match(PackageRef("deb", "libssl3", "3.0.11-1~deb12u2", "openssl"),
                          "Debian:12")
    found += matcher.match(PackageRef("pypi", "jinja2", "3.1.2"))
    assert max_severity(found) == "critical" and max_severity([]) == ""
    data = str(tmp_path / "data")
    assert main(["advisories", "import", write_dir(str(tmp_path / "d"), DOCS),
                 "--data", data]) == 0
    capsys.readouterr()
    assert main(["advisories", "match", "spack", "curl", "8.5.0", "--data", data]) == 1
    assert capsys.readouterr().out.startswith("CVE-2023-46218\tunknown\t-")
