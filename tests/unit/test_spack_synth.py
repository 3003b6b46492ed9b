"""The OCI config made for a spec pushed through S3 names the image
architecture spack itself would (binary_distribution: the target's family)."""

from __future__ import annotations

import json

import pytest

from loadtest.spackgen import make_spec
from registry.core.grammar import Digest
from registry.spack import synth
from registry.spack.specs import SpecDoc, SpecRecord


@pytest.mark.parametrize("target, family", [
    ("zen3", "x86_64"),
    ("x86_64_v3", "x86_64"),
    ("neoverse_v1", "aarch64"),
    ("power9le", "ppc64le"),
    ("not-a-microarchitecture", "not-a-microarchitecture"),
])
def test_target_family(target, family):
    assert synth.target_family(target) == family


@pytest.mark.parametrize("target, goarch", [("zen3", "amd64"), ("neoverse_v1", "arm64")])
def test_oci_config_architecture(target, goarch):
    fake = make_spec("zlib", target=target)
    spec = SpecDoc.parse(fake.doc)
    record = SpecRecord(spec, Digest.parse(fake.tarball_digest), len(fake.tarball), "v3")
    config = json.loads(synth.oci_config(record, ["sha256:" + "0" * 64]))
    assert config["architecture"] == goarch
    assert config["spec"] == fake.doc
