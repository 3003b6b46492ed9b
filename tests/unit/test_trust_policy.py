"""`[trust] policies`: one parser for the server and `registry config check`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from registry.config import ConfigError, TrustConfig
from registry.scan.vulns import Found
from registry.trust.blocking import blocking
from registry.trust.policy import Policy, parse_policies, parse_policy


def test_rules_parse_and_first_match_applies():
    policies = parse_policies(TrustConfig(policies=[
        "prod/* require=site", "ci/* sign=site", "hpc/* require=site+ci quarantine",
        "* sign=other"]))
    assert policies.for_repo("prod/app") == Policy("prod/*", ("site",))
    assert policies.for_repo("ci/a/b") == Policy("ci/*", sign="site")
    hpc = policies.for_repo("hpc/x")
    assert hpc == Policy("hpc/*", ("site", "ci"), None, True)
    assert hpc.verify_keys == ("site", "ci") and hpc.guards_pulls
    assert policies.for_repo("library/x") == Policy("*", sign="other")
    assert not Policy("*", sign="other").guards_pulls
    assert Policy("x", sign="k", quarantine=True).verify_keys == ("k",)
    assert policies.keys == {"site", "ci", "other"}
    assert policies.texts()[2] == "hpc/* require=site+ci quarantine"
    # The auth rules' glob: `*` crosses `/`, and the first rule wins over a later one.
    first = parse_policies(TrustConfig(policies=["prod/public/* sign=a", "prod/* require=b"]))
    assert first.for_repo("prod/public/x").sign == "a"
    assert first.for_repo("prod/x").require == ("b",)
    assert parse_policies(TrustConfig()).for_repo("prod/x") is None


def test_blocking_options_parse_and_judge_findings():
    rule = parse_policy("prod/* require=site sign=regkey block=high allow=cve-2023-1,GHSA-x "
                        "scan=required quarantine")
    assert (rule.block, rule.allow, rule.scan_required) == (
        "high", frozenset({"CVE-2023-1", "GHSA-X"}), True)
    assert rule.guards_pulls and rule.judges_scans and rule.judges_signatures
    assert parse_policy(str(rule)) == rule
    alone = parse_policy("scan/* scan=required")
    assert alone.guards_pulls and alone.judges_scans and not alone.judges_signatures
    f = Found
    findings = [f("DSA-1", ("CVE-2023-1",), "critical"), f("GHSA-X", (), "high"),
                f("PYSEC-2", (), "high"), f("OSV-3", (), "medium"), f("OSV-4", (), "unknown"),
                f("PYSEC-2", (), "critical")]
    # allowed by alias or id, case-insensitively; below the level or unranked: not blocked
    assert blocking(rule, findings) == ["PYSEC-2"]
    assert blocking(parse_policy("x block=medium"), findings) == [
        "DSA-1", "GHSA-X", "OSV-3", "PYSEC-2"]
    assert blocking(parse_policy("x block=critical"), findings) == ["DSA-1", "PYSEC-2"]
    assert blocking(alone, findings) == []


@pytest.mark.parametrize("text, says", [
    ("prod/*", "expected PATTERN OPTION"),
    ("prod/* require=", "empty key list"),
    ("prod/* require=site+", "empty key list"),
    ("prod/* sign=", "empty key list"),
    ("prod/* sign=a+b", "sign= takes one key"),
    ("prod/* require=Site", "key name 'Site'"),
    ("prod/* require=a+a", "named twice"),
    ("prod/* require=a require=b", "require given twice"),
    ("prod/* requires=site", "unknown option 'requires=site'"),
    ("prod/* quarantined", "unknown option"),
    ("prod/* quarantine", "quarantine needs require= or sign="),
    ("/prod require=site", "expected a repository name or glob"),
    ("Prod/* require=site", "expected a repository name or glob"),
    ("prod/../x require=site", "expected a repository name or glob"),
    ("prod/* block=severe", "block= takes a severity, one of critical, high, medium, low"),
    ("prod/* block=", "block= takes a severity"),
    ("prod/* block=high block=low", "block given twice"),
    ("prod/* allow=CVE-2024-1", "allow= needs block="),
    ("prod/* block=high allow=", "allow= takes advisory ids"),
    ("prod/* block=high allow=CVE-1,,CVE-2", "not ''"),
    ("prod/* block=high allow=CVE-1;rm", "not 'CVE-1;rm'"),
    ("prod/* block=high scan=later", "scan= takes `required`"),
])
def test_bad_rules_say_why(text, says):
    with pytest.raises(ValueError) as info:
        parse_policy(text)
    assert says in str(info.value) and text.split()[0][:20] in str(info.value)


def test_config_check_reports_every_bad_rule(tmp_path):
    """`registry config check` runs the server's parser and names each problem."""
    f = tmp_path / "r.toml"
    f.write_text('[trust]\npolicies = ["prod/* require=", "ci/* frobnicate", '
                 '"/x sign=a", "ok/* require=site", "vuln/* block=severe allow=CVE-1"]\n')
    out = subprocess.run([sys.executable, "-m", "registry", "config", "check", str(f)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    assert "4 problem(s)" in out.stderr
    assert "[trust] policies: policy 'prod/* require=': require= needs a key name" in out.stderr
    assert "unknown option 'frobnicate'" in out.stderr
    assert "pattern '/x'" in out.stderr
    assert "block= takes a severity, one of critical, high, medium, low, not 'severe'" \
        in out.stderr
    f.write_text('[trust]\npolicies = ["prod/* require=site", "hpc/* require=a+b quarantine", '
                 '"vuln/* sign=a block=high allow=CVE-2024-1,GHSA-abcd scan=required"]\n')
    out = subprocess.run([sys.executable, "-m", "registry", "config", "check", str(f)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ok" in out.stdout, out
    with pytest.raises(ConfigError):
        parse_policies(TrustConfig(policies=["x"]))
