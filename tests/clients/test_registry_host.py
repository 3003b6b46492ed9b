"""End to end: a multi-arch index pushed with `skopeo copy --all`, then answered per host
through the `Registry-Host` header (and /api/v1/resolve), the child pulled back by skopeo."""

from __future__ import annotations

import requests
from oci_layout import MT_INDEX, MT_MANIFEST, build_platform_index, layout_blob_digests

from registry.arch import platforms

AMD64 = {"os": "linux", "architecture": "amd64"}
CHILDREN = {
    "generic": {"platform": AMD64},
    "v3": {"platform": {**AMD64, "variant": "v3"}},
    "zen4": {"platform": {**AMD64, "variant": "v4"},
             "annotations": {platforms.TARGET: "zen4"}},
    "grace": {"platform": {"os": "linux", "architecture": "arm64"},
              "annotations": {platforms.TARGET: "neoverse_v2"}},
    "cuda": {"platform": {**AMD64, "variant": "v3"},
             "env": ["NVIDIA_REQUIRE_CUDA=cuda>=12.2 brand=tesla,driver>=535"]},
}
# Host -> the child it gets; what archspec's order says (docs/architecture-aware.md).
EXPECTED = {
    "os=linux&arch=amd64&target=x86_64_v3": "v3",
    "os=linux&arch=amd64&target=zen3": "v3",  # zen4 needs avx512, not on zen3
    "os=linux&arch=amd64&target=zen4": "zen4",
    # x86_64_v4 would do, but this build is annotated zen4: not an ancestor of SPR.
    "os=linux&arch=amd64&target=sapphirerapids": "v3",
    "os=linux&arch=amd64&target=haswell": "v3",
    "arch=amd64&target=zen3&cuda=12.4": "cuda",
    "arch=amd64&target=sapphirerapids&cuda=12.4": "cuda",  # v3's depth: a GPU build first
    "arch=amd64&target=zen3&cuda=11.8": "v3",  # the driver is older than the build's CUDA
    "arch=amd64&target=nehalem": "generic",
    "arch=arm64&target=neoverse_v2": "grace",
    "arch=arm64&target=neoverse_v3ae": "grace",  # a descendant of neoverse_v2
}


def test_skopeo_pushed_index_resolved_per_host(tools, registry, tmp_path):
    repo = registry.repo("hostaware")
    image = build_platform_index(tmp_path / "src", "latest", CHILDREN)
    tools.skopeo("copy", "--all", "--dest-tls-verify=false", image.ref,
                 tools.docker_ref(repo, "latest"))
    url = f"{registry.url}/v2/{repo}/manifests/latest"

    for host, name in EXPECTED.items():
        r = requests.get(url, headers={"Registry-Host": host}, timeout=30)
        assert r.status_code == 200, (host, r.text)
        assert r.headers["Docker-Content-Digest"] == image.children[name], host
        assert r.headers["Content-Type"] == MT_MANIFEST
        assert r.content == image.blobs[image.children[name]]
        assert r.headers["Registry-Host-Index"] == image.digest
        head = requests.head(url, headers={"Registry-Host": host}, timeout=30)
        assert head.headers["Docker-Content-Digest"] == image.children[name]
        api = requests.get(f"{registry.url}/api/v1/resolve/{repo}:latest?{host}", timeout=30)
        assert api.json()["digest"] == image.children[name], host

    # Nothing fits a Neoverse V1: 404 with every build's reason.
    r = requests.get(url, headers={"Registry-Host": "arch=arm64&target=neoverse_v1"}, timeout=30)
    assert r.status_code == 404
    error = r.json()["errors"][0]
    assert error["code"] == "MANIFEST_UNKNOWN"
    reasons = {c["digest"]: c["reason"] for c in error["detail"]["candidates"]}
    assert set(reasons) == set(image.children.values())
    assert "neoverse_v2" in reasons[image.children["grace"]]

    # Without the header: the index, as pushed.
    r = requests.get(url, headers={"Accept": MT_INDEX}, timeout=30)
    assert r.headers["Docker-Content-Digest"] == image.digest and r.content == image.manifest

    # The child a host got is pulled, blobs and all, from the same repository.
    out = tmp_path / "out"
    tools.skopeo("copy", "--src-tls-verify=false",
                 tools.docker_ref(repo, image.children["zen4"]), f"oci:{out}:zen4")
    assert image.children["zen4"] in layout_blob_digests(out)
