"""`GET /api/v1/requirements/<name>:<tag>|@<digest>` over HTTP, on every driver: an index
answers per child with one Slurm constraint for any; an image answers from the index's
row once it is there and the same before; bad references 400, unknown 404. And
`registry requirements REF` on the filesystem driver's store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from harness import wait_for

from .helpers import call
from .test_resolve import push_mixed

NFD = "feature.node.kubernetes.io/cpu-cpuid."


@pytest.fixture(scope="module")
def mixed(registry) -> tuple[str, dict[str, str]]:
    repo = registry.repo("needs")
    return repo, push_mixed(registry, repo)


def test_an_index_answers_per_child(registry, mixed) -> None:
    repo, digests = mixed
    r = call(registry, "GET", f"/api/v1/requirements/{repo}:latest")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == repo and body["digest"] == digests["index"]
    by_digest = {m["digest"]: m for m in body["manifests"]}
    assert list(by_digest) == [digests[k] for k in ("generic", "v3", "zen4", "grace", "cuda")]
    v3, cuda = by_digest[digests["v3"]], by_digest[digests["cuda"]]
    assert (v3["target"], v3["cuda"], v3["source"]) == ("x86_64_v3", None, "described")
    assert "avx2" in v3["cpu_features"] and v3["labels"][NFD + "AVX2"] == "true"
    assert v3["labels"]["kubernetes.io/arch"] == "amd64"
    assert cuda["cuda"] == "12.2" and cuda["slurm"]["constraint"] == "x86_64_v3&cuda12"
    grace = by_digest[digests["grace"]]
    assert grace["labels"]["kubernetes.io/arch"] == "arm64" and NFD + "SVE" in grace["labels"]
    zen4 = by_digest[digests["zen4"]]
    assert zen4["target"] == "zen4" and NFD + "AVX512F" in zen4["labels"]
    assert body["slurm"]["constraint"] == (
        "x86_64|x86_64_v3|zen4|neoverse_v2|(x86_64_v3&cuda12)")


def test_an_image_answers_from_the_index_row_as_before_it(registry, mixed) -> None:
    repo, digests = mixed
    path = f"/api/v1/requirements/{repo}@{digests['zen4']}"
    first = call(registry, "GET", path)
    assert first.status_code == 200, first.text
    # The index's row is written off the request path: the answer is the same before.
    later = wait_for(lambda: call(registry, "GET", path).json(),
                     lambda doc: doc["manifests"][0]["source"] == "index")
    for doc in (first.json(), later):
        (only,) = doc["manifests"]
        assert only["target"] == "zen4" and only["sources"]["target"] == "annotation"
        assert only["slurm"]["constraint"] == doc["slurm"]["constraint"] == "zen4"
    strip = {"source"}
    assert ({k: v for k, v in later["manifests"][0].items() if k not in strip}
            == {k: v for k, v in first.json()["manifests"][0].items() if k not in strip})


@pytest.mark.parametrize(("path", "status"), [
    ("{repo}:nope", 404), ("other/unknown:latest", 404),
    ("{repo}@sha256:" + "0" * 64, 404), ("{repo}@sha256:zz", 400),
    ("{repo}:-bad", 400), ("NOT..valid:latest", 400), ("{repo}:" + "a" * 200, 400),
    ("{repo}@md5:abc", 400),
])
def test_bad_and_unknown_references(registry, mixed, path: str, status: int) -> None:
    repo, _ = mixed
    r = call(registry, "GET", "/api/v1/requirements/" + path.format(repo=repo))
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["status"] == status


def test_cli_prints_the_same_requirements(registry, mixed) -> None:
    if registry.data_dir is None:
        pytest.skip("the CLI reads a filesystem store")
    repo, digests = mixed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    data = ["--data", str(registry.data_dir)]
    done = subprocess.run([sys.executable, "-m", "registry", "requirements", f"{repo}:latest",
                           *data, "--json"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    api = call(registry, "GET", f"/api/v1/requirements/{repo}:latest").json()
    assert doc == api
    table = subprocess.run([sys.executable, "-m", "registry", "requirements",
                            f"{repo}@{digests['cuda']}", *data], capture_output=True,
                           text=True, env=env, timeout=120)
    assert table.returncode == 0, table.stderr
    # By digest the image is what its config says (amd64, no variant), CUDA 12.2.
    assert "x86_64&cuda12" in table.stdout and "nvidia.com/gpu.present=true" in table.stdout
    bad = subprocess.run([sys.executable, "-m", "registry", "requirements", f"{repo}:-x",
                          *data], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1 and "invalid tag" in bad.stderr
