"""Real clients against a registry on the S3 driver: skopeo copies an image in and back
through two replicas on one bucket, with identical digests; and the podman, buildah and
oras suites of tests/clients run unchanged against the S3-backed `registry` fixture
(tests/s3/conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from clients.oci_layout import build_image, read_blob, read_layout

# The client suites import their helpers as top-level modules (oci_layout).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients"))

from clients.conftest import tools  # noqa: F401  (a fixture)
from clients.test_buildah import test_build_commit_push as test_buildah_on_s3  # noqa: F401
from clients.test_oras import client  # noqa: F401  (a fixture)
from clients.test_oras import test_referrers as test_oras_referrers_on_s3  # noqa: F401
from clients.test_podman import test_pull_push_pull as test_podman_on_s3  # noqa: F401


def skopeo(policy: Path, *args: str) -> str:
    assert shutil.which("skopeo"), "skopeo missing: run the suite with `bash tests/run.sh`"
    out = subprocess.run(["skopeo", "--policy", str(policy), *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, f"skopeo {' '.join(args)}:\n{out.stderr}"
    return out.stdout


def test_skopeo_round_trip_across_s3_replicas(start_registry, s3_env, tmp_path):
    a = start_registry(env=s3_env())
    b = start_registry(env=s3_env())
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    image = build_image(tmp_path / "src", "v1", layers=2, seed=7)

    skopeo(policy, "copy", "--dest-tls-verify=false", image.ref,
           f"docker://{a.host}/s3/app:v1")
    raw = skopeo(policy, "inspect", "--raw", "--tls-verify=false",
                 f"docker://{b.host}/s3/app:v1")
    assert raw.encode() == image.manifest
    out = tmp_path / "back"
    skopeo(policy, "copy", "--src-tls-verify=false", f"docker://{b.host}/s3/app:v1",
           f"oci:{out}:v1")
    entry, manifest = read_layout(out, "v1")
    assert entry["digest"] == image.digest and manifest == image.manifest
    for digest, data in image.blobs.items():
        assert read_blob(out, digest) == data


def test_the_shared_registry_here_is_on_s3(registry, seaweed):
    """Guards the meaning of the imported suites: their `registry` stores in the bucket."""
    assert registry.env["REGISTRY_STORAGE_DRIVER"] == "s3"
    r = subprocess.run(["curl", "-sf", f"{registry.url}/v2/"], capture_output=True, timeout=30)
    assert r.returncode == 0
    assert not (registry.data_dir / "storage").exists()
