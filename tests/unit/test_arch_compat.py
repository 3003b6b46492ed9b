"""Image-compatibility artifacts (registry.arch.compat): both formats parsed from
bytes, each rule kind fitting and not, the winning set, the newest artifact of a
type, and hostile documents that raise only CompatError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.arch import compat
from registry.arch.compat import ARTIFACT_NFD, ARTIFACT_OCI, CompatError, Stored
from registry.arch.host import HostError, host_query, parse_host

OCI_SPEC = {"compatibilities": [
    {"oci.cpu.vendor": "GenuineIntel", "oci.cpu.features": "AVX512FP16,",
     "oci.kernel.selinux": "false", "oci.kernel.versions": "[4.19, 5.16)",
     "oci.os.glibc": "[2.31, 2.37]", "oci.pci.devices": "15B3.020D,",
     "compatibility-score": 50},
    {"oci.cpu.vendor": "AuthenticAMD", "oci.cpu.features": "AVX2,FMA",
     "oci.kernel.versions": "[5.10,)", "oci.compatibility-score": 80,
     "annotation": "only AMD"},
]}

NFD_SPEC = b"""version: v1alpha1
compatibilities:
- description: "My image requirements"
  weight: 10
  tag: prod
  rules:
  - name: "kernel and cpu"
    labels: {ignored: "true"}
    matchFeatures:
    - feature: kernel.loadedmodule
      matchExpressions:
        vfio-pci: {op: Exists}
    - feature: cpu.model
      matchExpressions:
        vendor_id: {op: In, value: ["Intel", "AMD"]}
    - feature: cpu.cpuid
      matchExpressions:
        AVX512F: {op: Exists}
        SVE: {op: DoesNotExist}
    - feature: kernel.version
      matchExpressions:
        major: {op: Gt, value: ["5"]}
  - name: "one of available nics"
    matchAny:
    - matchFeatures:
      - feature: pci.device
        matchExpressions:
          vendor: {op: In, value: ["0eee"]}
          class: {op: In, value: ["0200"]}
    - matchFeatures:
      - feature: pci.device
        matchExpressions:
          vendor: {op: In, value: ["15b3"]}
"""


def oci(doc: object) -> compat.Artifact:
    return compat.parse(ARTIFACT_OCI, json.dumps(doc).encode())


def judge(artifact: compat.Artifact, query: str) -> compat.CompatVerdict:
    return compat.judge(artifact, parse_host(query))


# -- OCI working group's format ----------------------------------------------------


def test_oci_best_holding_set_wins_by_score() -> None:
    a = oci(OCI_SPEC)
    v = judge(a, "target=zen3&kernel=6.1")
    assert v.fits and v.score == 80
    assert v.reason.startswith("OCI compatibility set 2 (score 80) holds")
    assert "kernel 6.1 in [5.10, )" in v.reason


def test_oci_both_sets_hold_the_higher_score_is_named() -> None:
    doc = {"compatibilities": [{"oci.cpu.features": "AVX2", "compatibility-score": 5},
                               {"oci.cpu.features": "SSE2", "compatibility-score": 9},
                               {"oci.cpu.features": "AVX"}]}
    assert judge(oci(doc), "target=haswell").score == 9


@pytest.mark.parametrize(("query", "fits", "words"), [
    # vendor: stated, or the archspec target's
    ("target=zen3", True, "CPU vendor AuthenticAMD"),
    ("target=x86_64_v3&vendor=AuthenticAMD", True, "CPU vendor AuthenticAMD"),
    ("target=x86_64_v3&vendor=Hygon", False, "needs CPU vendor AuthenticAMD"),
    # features: the target's (archspec spells them fma, avx2) and the host's own
    ("target=x86_64_v2", False, "needs CPU features AVX2, FMA not on x86_64_v2"),
    ("target=x86_64_v2&features=avx2,fma&vendor=AuthenticAMD", True, "CPU features"),
    # kernel range: checked only when stated
    ("target=zen2&kernel=5.10", True, "kernel 5.10 in [5.10, )"),
    ("target=zen2&kernel=5.9.14", False, "kernel 5.9.14 not in [5.10, )"),
    ("target=zen2", True, "not checked (the host states no kernel)"),
])
def test_oci_amd_set(query: str, fits: bool, words: str) -> None:
    doc = {"compatibilities": [OCI_SPEC["compatibilities"][1]]}
    v = judge(oci(doc), query)
    assert v.fits is fits and words in v.reason, v.reason


@pytest.mark.parametrize(("query", "fits", "words"), [
    ("target=sapphirerapids&features=avx512fp16&kernel=5.4&glibc=2.36&pci=15b3:020d",
     True, "PCI devices 15b3.020d"),
    ("target=sapphirerapids&features=avx512fp16&kernel=5.16", False, "kernel 5.16 not in"),
    ("target=sapphirerapids&features=avx512fp16&glibc=2.38", False, "glibc 2.38 not in"),
    ("target=sapphirerapids&features=avx512fp16&pci=10de:2330", False,
     "needs PCI devices 15b3.020d not on the host"),
    ("target=sapphirerapids", False, "needs CPU features AVX512FP16"),
    ("target=zen4&features=avx512fp16", False, "needs CPU vendor GenuineIntel"),
])
def test_oci_intel_set(query: str, fits: bool, words: str) -> None:
    doc = {"compatibilities": [OCI_SPEC["compatibilities"][0]]}
    v = judge(oci(doc), query)
    assert v.fits is fits and words in v.reason, v.reason
    if fits:
        assert "oci.kernel.selinux not checked" in v.reason


def test_oci_nothing_holds_gives_every_sets_reason() -> None:
    v = judge(oci(OCI_SPEC), "target=icelake")
    assert not v.fits
    assert v.reason.startswith("no OCI compatibility set holds (set 1: ")
    assert "set 2: needs CPU vendor AuthenticAMD" in v.reason


def test_oci_ranges_and_devices() -> None:
    doc = {"compatibilities": [{"oci.os.glibc": "(2.17, 2.28], [2.31,2.31], 2.35",
                                "oci.pci.devices": "10DE"}]}
    a = oci(doc)
    assert judge(a, "glibc=2.28&pci=10de:2330").fits
    assert judge(a, "glibc=2.35.0&pci=10de:2330").fits
    assert not judge(a, "glibc=2.17&pci=10de:2330").fits
    assert not judge(a, "glibc=2.30&pci=10de:2330").fits
    assert not judge(a, "glibc=2.31&pci=1002:67ff").fits


# -- NFD's format ------------------------------------------------------------------


def test_nfd_rules_hold_with_unstated_features_not_checked() -> None:
    a = compat.parse(ARTIFACT_NFD, NFD_SPEC)
    v = judge(a, "target=zen4&kernel=6.1&pci=15b3:101d")
    assert v.fits and v.score == 10, v.reason
    assert "kernel.loadedmodule not checked" in v.reason


@pytest.mark.parametrize(("query", "words"), [
    ("target=zen3", "cpu.cpuid AVX512F Exists fails (host: absent)"),
    ("target=zen4&kernel=5.4", "kernel.version major Gt ['5'] fails (host: 5)"),
    ("target=zen4&pci=10de:2330", "no matchAny element holds"),
    ("target=zen4&vendor=Hygon", "cpu.model vendor_id In ['Intel', 'AMD'] fails"),
    ("target=zen4&features=sve", "cpu.cpuid SVE DoesNotExist fails (host: present)"),
])
def test_nfd_rules_not_holding(query: str, words: str) -> None:
    v = judge(compat.parse(ARTIFACT_NFD, NFD_SPEC), query)
    assert not v.fits and words in v.reason, v.reason


@pytest.mark.parametrize(("expr", "kernel", "fits"), [
    ({"op": "GtLt", "value": ["4", "7"]}, "6.1", True),
    ({"op": "GtLt", "value": ["4", "6"]}, "6.1", False),
    ({"op": "Lt", "value": ["6"]}, "5.15", True),
    ({"op": "InRegexp", "value": ["^6\\.[0-9]+$"]}, "6.1", True),
    ({"op": "InRegexp", "value": ["^5"]}, "6.1", False),
    ({"op": "NotIn", "value": ["6.1"]}, "6.1", False),
    ({"op": "Exists"}, "6.1", True),
])
def test_nfd_operators_on_kernel_version(expr: dict, kernel: str, fits: bool) -> None:
    attr = "full" if expr["op"] in ("InRegexp", "NotIn") else "major"
    doc = {"version": "v1alpha1", "compatibilities": [{"rules": [
        {"name": "k", "matchFeatures": [{"feature": "kernel.version",
                                         "matchExpressions": {attr: expr}}]}]}]}
    a = compat.parse(ARTIFACT_NFD, json.dumps(doc).encode())  # JSON is YAML too
    assert judge(a, f"kernel={kernel}").fits is fits


def test_nfd_match_name_on_cpuid() -> None:
    doc = {"version": "v1alpha1", "compatibilities": [{"rules": [
        {"name": "amx", "matchFeatures": [{"feature": "cpu.cpuid",
                                           "matchName": {"op": "In", "value": ["AMXTILE"]}}]}]}]}
    a = compat.parse(ARTIFACT_NFD, json.dumps(doc).encode())
    assert judge(a, "target=sapphirerapids").fits
    assert "has no name" in judge(a, "target=icelake").reason


# -- recorded artifacts --------------------------------------------------------------


def test_round_trip_through_the_index_text() -> None:
    for a in (oci(OCI_SPEC), compat.parse(ARTIFACT_NFD, NFD_SPEC)):
        assert compat.from_json(a.to_json()) == a


def test_newest_artifact_of_a_type_counts_and_every_type_must_hold() -> None:
    strict = oci({"compatibilities": [{"oci.cpu.vendor": "GenuineIntel"}]}).to_json()
    loose = oci({"compatibilities": [{"oci.cpu.features": "SSE2"}]}).to_json()
    host = parse_host("target=zen3")
    old = Stored("sha256:a", ARTIFACT_OCI, "2024-01-01T00:00:00Z", 1.0, strict)
    new = Stored("sha256:b", ARTIFACT_OCI, "2025-01-01T00:00:00Z", 0.5, loose)
    assert compat.judge_current([old, new], host).fits
    assert not compat.judge_current([new, Stored("sha256:c", ARTIFACT_OCI, "2026", 0, strict)],
                                    host).fits
    nfd = compat.parse(ARTIFACT_NFD, NFD_SPEC).to_json()
    v = compat.judge_current([new, Stored("sha256:d", ARTIFACT_NFD, "", 0, nfd)], host)
    assert not v.fits and "AVX512F" in v.reason
    assert compat.judge_current([], host) == compat.CompatVerdict(True, "", 0)


# -- hostile and invalid documents ------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"not json", b"\xff\xfe", b"[1, 2]", b'{"compatibilities": []}', b'{"compatibilities": {}}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 100 + b"1" + b"}" * 100,
    b'{"compatibilities": [' + b"{}," * 30_000 + b"{}]}",
    json.dumps({"compatibilities": [{"oci.cpu.vendor": "x"}] * 65}).encode(),
    json.dumps({"compatibilities": [{"oci.kernel.versions": 4.19}]}).encode(),
    json.dumps({"compatibilities": [{"oci.kernel.versions": "[5.16, 4.19)"}]}).encode(),
    json.dumps({"compatibilities": [{"oci.kernel.versions": "[four, five)"}]}).encode(),
    json.dumps({"compatibilities": [{"oci.pci.devices": "nvidia"}]}).encode(),
    json.dumps({"compatibilities": [{"oci.cpu.features": ",,,"}]}).encode(),
    json.dumps({"compatibilities": [{"compatibility-score": "10"}]}).encode(),
    json.dumps({"compatibilities": [{"oci.cpu.vendor": "x", "compatibility-score": True}]}
               ).encode(),
    json.dumps({"compatibilities": [{"oci.cpu.vendor": "x", "compatibility-score": 1,
                                     "oci.compatibility-score": 2}]}).encode(),
    json.dumps({"compatibilities": [{"annotation": "nothing to check"}]}).encode(),
    json.dumps({"compatibilities": [{"bad key!": "x"}]}).encode(),
    json.dumps({"compatibilities": [{"oci.x": "y" * 2000}]}).encode(),
    b'{"compatibilities": [{"oci.cpu.vendor": NaN}]}',
    b'{"compatibilities": [{"oci.cpu.vendor": 1e400}]}',
    b" " * (65 << 10),
], ids=lambda d: repr(d[:24]))
def test_hostile_oci_documents_raise_compat_error(data: bytes) -> None:
    with pytest.raises(CompatError):
        compat.parse(ARTIFACT_OCI, data)


def _nfd(rule: dict) -> bytes:
    return json.dumps({"version": "v1alpha1", "compatibilities": [{"rules": [rule]}]}).encode()


@pytest.mark.parametrize("data", [
    b"version: v1alpha1\ncompatibilities: [{rules: [{name: a, matchFeatures: &x []}]}]\n",
    b"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",  # billion laughs, small
    b"version: !!python/object:os.system x\n",
    b"version: v1alpha1\n---\nversion: v1alpha1\n",
    b"- " * 40 + b"x\n",
    b"[" * 3000 + b"]" * 3000,
    b"version: v1\ncompatibilities: []\n",
    b"version: v1alpha1\ncompatibilities: []\n",
    b"version: v1alpha1\ncompatibilities: [{rules: []}]\n",
    b"version: v1alpha1\ncompatibilities: [{rules: [{name: a}]}]\n",
    b"version: v1alpha1\ncompatibilities: [{weight: x, rules: [{name: a, matchAny: [{}]}]}]\n",
    b"version: v1alpha1\ncompatibilities: [{rules: [{name: a, matchFeatures: [{feature: f, "
    b"matchExpressions: {x: {op: In, value: [0200]}}}]}]}]\n",  # YAML turns it into a number
    b"version: v1alpha1\ncompatibilities: [{rules: [{name: a, matchFeatures: [{feature: f, "
    b"matchExpressions: {x: {op: Approx}}}]}]}]\n",
    b"version: v1alpha1\nwhen: 2024-01-01\ncompatibilities: [{rules: [{name: a}]}]\n",
    _nfd({"name": "a", "matchFeatures": [{"feature": "f", "matchExpressions": {
        "x": {"op": "Gt", "value": ["five"]}}}]}),
    _nfd({"name": "a", "matchFeatures": [{"feature": "f", "matchExpressions": {
        "x": {"op": "GtLt", "value": ["7", "4"]}}}]}),
    _nfd({"name": "a", "matchFeatures": [{"feature": "f", "matchExpressions": {
        "x": {"op": "Exists", "value": ["y"]}}}]}),
    _nfd({"name": "a", "matchFeatures": [{"feature": "f", "matchExpressions": {
        "x": {"op": "InRegexp", "value": ["(a+)+$"]}}}]}),
    _nfd({"name": "a", "matchFeatures": [{"feature": "f", "matchExpressions": {
        "x": {"op": "InRegexp", "value": [".*.*.*.*x"]}}}]}),
    _nfd({"name": "a", "matchFeatures": [{"feature": "f", "matchExpressions": {
        "x": {"op": "InRegexp", "value": ["(a)\\1"]}}}]}),
    _nfd({"name": "a", "matchFeatures": [{"feature": "f", "matchExpressions": {
        "x": {"op": "In", "value": ["v"] * 65}}}]}),
    _nfd({"name": 7, "matchFeatures": [{"feature": "f", "matchName": {"op": "Exists"}}]}),
], ids=lambda d: repr(d[:30]))
def test_hostile_nfd_documents_raise_compat_error(data: bytes) -> None:
    with pytest.raises(CompatError):
        compat.parse(ARTIFACT_NFD, data)


def test_unknown_artifact_type_is_refused() -> None:
    with pytest.raises(CompatError):
        compat.parse("application/vnd.example", b"{}")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_compat_error(data: bytes) -> None:
    for kind in (ARTIFACT_OCI, ARTIFACT_NFD):
        try:
            compat.parse(kind, data)
        except CompatError:
            pass


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(
                         ["compatibilities", "version", "rules", "name", "matchFeatures",
                          "matchAny", "feature", "matchExpressions", "matchName", "op",
                          "value", "weight", "oci.cpu.vendor", "oci.kernel.versions",
                          "oci.pci.devices", "compatibility-score", "x"]), inner, max_size=5),
                     max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(_json)
def test_structured_junk_raises_only_compat_error_and_judges_cleanly(doc: object) -> None:
    host = parse_host("target=zen3&kernel=6.1&glibc=2.36&pci=10de:2330")
    for kind in (ARTIFACT_OCI, ARTIFACT_NFD):
        try:
            artifact = compat.parse(kind, json.dumps(doc).encode())
        except CompatError:
            continue
        assert compat.judge(artifact, host).reason


# -- host keys for the artifacts --------------------------------------------------------


def test_host_states_vendor_kernel_glibc_pci() -> None:
    host = parse_host("target=zen3&vendor=AuthenticAMD&kernel=6.1.55&glibc=2.36"
                      "&pci=10DE:2330,15b3.101d")
    assert host.vendor == "AuthenticAMD" and host.kernel == (6, 1, 55)
    assert host.glibc == (2, 36)
    assert host.pci == frozenset({("10de", "2330"), ("15b3", "101d")})
    assert parse_host(host_query(host)) == host  # the node cache's config writes it so


@pytest.mark.parametrize("query", [
    "kernel=6.1.0-18-amd64", "glibc=two", "pci=10de", "pci=10de:23300",
    "pci=" + ",".join(["10de:2330"] * 65), "vendor=Genuine Intel", "kernel=6.1&kernel=6.2",
])
def test_host_rejects_bad_artifact_facts(query: str) -> None:
    with pytest.raises(HostError):
        parse_host(query)


def test_regex_work_is_bounded_per_set() -> None:
    # 64 patterns of 3 quantifiers against each of zen4's ~70 flags: far over the budget.
    doc = {"version": "v1alpha1", "compatibilities": [{"rules": [
        {"name": "costly", "matchFeatures": [{"feature": "cpu.cpuid", "matchName": {
            "op": "InRegexp", "value": ["a*b*c*x"] * 64}}]}]}]}
    v = judge(compat.parse(ARTIFACT_NFD, json.dumps(doc).encode()), "target=zen4")
    assert not v.fits and "cost too much" in v.reason, v.reason
    cheap = json.dumps(doc).replace('"a*b*c*x"', '"^AVX512"').encode()
    assert judge(compat.parse(ARTIFACT_NFD, cheap), "target=zen4").fits
