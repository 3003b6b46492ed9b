"""Host-aware answers over HTTP: `GET /api/v1/resolve/<name>:<tag>?...` and the
`Registry-Host` header on the OCI manifest path (registry.api.resolve_api), against a
multi-arch index pushed over the API; access decided before anything is looked up."""

from __future__ import annotations

import json

import pytest

from registry.arch import platforms

from .helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_error,
    call,
    descriptor,
    image_manifest,
    index_manifest,
    push_blob,
    push_manifest,
    random_bytes,
)


def push_child(reg, repo: str, arch: str = "amd64", annotations: dict | None = None,
               env: list[str] | None = None) -> dict:
    config = {"architecture": arch, "os": "linux", "n": random_bytes(4).hex()}
    if env:
        config["config"] = {"Env": env}
    raw = json.dumps(config).encode()
    layer = random_bytes(128)
    push_blob(reg, repo, raw)
    push_blob(reg, repo, layer)
    doc = image_manifest(descriptor(OCI_CONFIG, raw), [descriptor(OCI_LAYER, layer)],
                         annotations=annotations)
    return push_manifest(reg, repo, doc).descriptor


def push_mixed(reg, repo: str, tag: str = "latest") -> dict[str, str]:
    """generic amd64, amd64/v3, zen4 (annotated), neoverse_v2 (arm64), CUDA 12.2 (v3)."""
    kids = {
        "generic": (push_child(reg, repo), {"os": "linux", "architecture": "amd64"}),
        "v3": (push_child(reg, repo), {"os": "linux", "architecture": "amd64", "variant": "v3"}),
        "zen4": (push_child(reg, repo, annotations={platforms.TARGET: "zen4"}),
                 {"os": "linux", "architecture": "amd64", "variant": "v4"}),
        "grace": (push_child(reg, repo, "arm64", {platforms.TARGET: "neoverse_v2"}),
                  {"os": "linux", "architecture": "arm64"}),
        "cuda": (push_child(reg, repo, env=["NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla"]),
                 {"os": "linux", "architecture": "amd64", "variant": "v3"}),
    }
    index = index_manifest([{**desc, "platform": plat} for desc, plat in kids.values()])
    digests = {name: desc["digest"] for name, (desc, _) in kids.items()}
    digests["index"] = push_manifest(reg, repo, index, tag, OCI_INDEX).digest
    return digests


@pytest.fixture(scope="module")
def mixed(registry) -> tuple[str, dict[str, str]]:
    repo = registry.repo("hpc")
    return repo, push_mixed(registry, repo)


@pytest.mark.parametrize(("query", "best"), [
    ("os=linux&arch=amd64&target=zen3", "v3"),
    ("target=zen4", "zen4"),
    ("target=zen3&cuda=12.4", "cuda"),
    ("arch=arm64&target=neoverse_v2", "grace"),
])
def test_resolve_api_answers_the_best_build(registry, mixed, query: str, best: str) -> None:
    repo, digests = mixed
    r = call(registry, "GET", f"/api/v1/resolve/{repo}:latest?{query}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["digest"] == digests[best] and body["index"] == digests["index"]
    assert len(body["candidates"]) == 5
    first = body["candidates"][0]
    assert first["digest"] == digests[best] and first["fits"] and first["rank"] == 1
    assert set(first) >= {"digest", "platform", "target", "fits", "reason", "rank"}
    # By digest of the index, the same answer.
    r = call(registry, "GET", f"/api/v1/resolve/{repo}@{digests['index']}?{query}")
    assert r.status_code == 200 and r.json()["digest"] == digests[best]


def test_resolve_api_nothing_fits_is_a_404_problem_with_the_candidates(registry, mixed) -> None:
    repo, digests = mixed
    r = call(registry, "GET", f"/api/v1/resolve/{repo}:latest?arch=arm64&target=neoverse_v1")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 404 and problem["title"] == "MANIFEST_UNKNOWN"
    candidates = problem["errors"]["candidates"]
    assert {c["digest"] for c in candidates} == {d for k, d in digests.items() if k != "index"}
    assert not any(c["fits"] for c in candidates)
    grace = next(c for c in candidates if c["digest"] == digests["grace"])
    assert "neoverse_v2" in grace["reason"] and grace["target"] == "neoverse_v2"


@pytest.mark.parametrize("query", ["target=zen99", "cuda=twelve", "os=linux&os=linux",
                                   "colour=blue", "arch=amd64&target=neoverse_v2",
                                   "mpi=Open%20MPI", "features=" + ",".join(["a"] * 100)])
def test_resolve_api_bad_queries_are_400(registry, mixed, query: str) -> None:
    repo, _ = mixed
    r = call(registry, "GET", f"/api/v1/resolve/{repo}:latest?{query}")
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"] == "application/problem+json"


def test_resolve_api_unknown_names_and_tags(registry, mixed) -> None:
    repo, _ = mixed
    for path in (f"{repo}:nope", "no/such/repo:latest", f"{repo}@sha256:{'0' * 64}"):
        r = call(registry, "GET", f"/api/v1/resolve/{path}?target=zen3")
        assert r.status_code == 404, (path, r.text)
    assert call(registry, "GET", "/api/v1/resolve/BAD:latest").status_code == 400


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(("host", "best"), [
    ("os=linux&arch=amd64&target=zen3", "v3"),
    ("os=linux&arch=amd64&target=zen3&cuda=12.4", "cuda"),
    ("arch=arm64&target=neoverse_v2", "grace"),
])
def test_registry_host_header_answers_the_child(registry, mixed, method: str, host: str,
                                               best: str) -> None:
    repo, digests = mixed
    r = call(registry, method, f"/v2/{repo}/manifests/latest", headers={"Registry-Host": host})
    assert r.status_code == 200, r.text
    assert r.headers["Docker-Content-Digest"] == digests[best]
    assert r.headers["Content-Type"] == OCI_MANIFEST
    assert r.headers["Registry-Host-Index"] == digests["index"]
    assert "Registry-Host" in r.headers["Vary"]
    if method == "GET":
        child = call(registry, "GET", f"/v2/{repo}/manifests/{digests[best]}")
        assert r.content == child.content
        # The child's blobs are the repository's: pullable as they are.
        config = json.loads(r.content)["config"]
        assert call(registry, "GET", f"/v2/{repo}/blobs/{config['digest']}").status_code == 200


def test_without_the_header_or_by_digest_nothing_changes(registry, mixed) -> None:
    repo, digests = mixed
    r = call(registry, "GET", f"/v2/{repo}/manifests/latest")
    assert r.headers["Docker-Content-Digest"] == digests["index"]
    assert r.headers["Content-Type"] == OCI_INDEX and "Vary" not in r.headers
    r = call(registry, "GET", f"/v2/{repo}/manifests/{digests['index']}",
             headers={"Registry-Host": "target=zen3"})
    assert r.headers["Docker-Content-Digest"] == digests["index"]
    # An image manifest's tag: as it is, whatever the host.
    child = push_child(registry, repo)
    push_manifest(registry, repo, call(registry, "GET", f"/v2/{repo}/manifests/"
                                       f"{child['digest']}").content, "single")
    r = call(registry, "GET", f"/v2/{repo}/manifests/single",
             headers={"Registry-Host": "arch=arm64"})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == child["digest"]


def test_registry_host_nothing_fits_and_malformed(registry, mixed) -> None:
    repo, digests = mixed
    r = call(registry, "GET", f"/v2/{repo}/manifests/latest",
             headers={"Registry-Host": "arch=arm64&target=neoverse_v1"})
    doc = assert_error(r, 404, "MANIFEST_UNKNOWN")
    detail = doc["errors"][0]["detail"]
    assert detail["index"] == digests["index"] and len(detail["candidates"]) == 5
    assert all(c["reason"] for c in detail["candidates"])
    for bad in ("target=zen99", "nonsense", "cuda=1.2.3.4.5.6", "x" * 2000):
        r = call(registry, "GET", f"/v2/{repo}/manifests/latest", headers={"Registry-Host": bad})
        assert_error(r, 400, "UNSUPPORTED")
    r = call(registry, "HEAD", f"/v2/{repo}/manifests/latest",
             headers={"Registry-Host": "target=zen99"})
    assert r.status_code == 400


def test_anonymous_callers_learn_nothing_of_private_repositories(driver, start_registry) -> None:
    if driver != "memory":
        pytest.skip("access is decided before storage: one driver says it")
    reg = start_registry('[auth]\nmode = "token"\n'
                         'rules = ["private/* anonymous push", "public/* anonymous pull,push"]\n')
    push_mixed(reg, "private/app")
    push_mixed(reg, "public/app")
    ok = call(reg, "GET", "/api/v1/resolve/public/app:latest?target=zen3")
    assert ok.status_code == 200 and ok.json()["digest"]
    answers = []
    for path in ("private/app:latest", "private/nope:latest", "private/app:nope"):
        r = call(reg, "GET", f"/api/v1/resolve/{path}?target=zen3")
        answers.append((r.status_code, r.headers.get("WWW-Authenticate"), r.json()["title"]))
    assert answers[0][0] == 401 and answers.count(answers[0]) == 3
    r = call(reg, "GET", "/v2/private/app/manifests/latest",
             headers={"Registry-Host": "target=zen3"})
    assert r.status_code == 401
