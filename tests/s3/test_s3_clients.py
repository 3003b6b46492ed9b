"""Real clients against a registry on the S3 driver: skopeo copies an image in and back
through two replicas on one bucket, with identical digests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from clients.oci_layout import build_image, read_blob, read_layout


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
