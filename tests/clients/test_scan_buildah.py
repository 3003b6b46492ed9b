"""End to end: an image buildah builds (two layers) and pushes with zstd layers is
scanned by the registry server: its apk database, distribution, Python package and
setuid file, each from the layer buildah wrote it in."""

from __future__ import annotations

import requests
from harness import wait_for

from tests.scan import layers as L


def test_a_buildah_image_is_scanned(tools, registry, tmp_path):
    repo = registry.repo("scan")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_bytes(L.ALPINE_OS_RELEASE)
    (root / "lib" / "apk" / "db").mkdir(parents=True)
    (root / "lib" / "apk" / "db" / "installed").write_bytes(L.APK_INSTALLED)
    (root / "bin").mkdir()
    (root / "bin" / "ping").write_bytes(b"\x7fELF")
    site = tmp_path / "six-1.16.0.dist-info"
    site.mkdir()
    (site / "METADATA").write_bytes(L.PKG_INFO)

    base = tools.buildah("from", "scratch").stdout.strip()
    tools.buildah("copy", base, root, "/")
    tools.buildah("copy", "--chmod", "4755", base, root / "bin" / "ping", "/bin/ping")
    tools.buildah("commit", "--format", "oci", base, "localhost/scan-base:1")
    top = tools.buildah("from", "localhost/scan-base:1").stdout.strip()
    tools.buildah("copy", top, site, "/usr/lib/python3.11/site-packages/six-1.16.0.dist-info")
    tools.buildah("commit", "--format", "oci", top, "localhost/scan-top:1")
    digestfile = tmp_path / "digest"
    tools.buildah("push", "--tls-verify=false", "--compression-format", "zstd",
                  f"--digestfile={digestfile}", "localhost/scan-top:1",
                  tools.docker_ref(repo, "v1"))
    digest = digestfile.read_text().strip()

    r = wait_for(lambda: requests.get(f"{registry.url}/api/v1/scan/{repo}@{digest}",
                                      timeout=10),
                 lambda r: r.status_code == 200)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["errors"] == []
    assert [x["compression"] for x in doc["layers"]] == ["zstd", "zstd"]
    first, second = (x["digest"] for x in doc["layers"])
    found = {(p["ecosystem"], p["name"], p["version"], p["layer"]) for p in doc["packages"]}
    assert found == {("apk", "musl", "1.2.4_git20230717-r4", first),
                     ("apk", "libcrypto3", "3.1.4-r5", first),
                     ("pypi", "six", "1.16.0", second)}
    assert {(f["kind"], f["path"]) for f in doc["findings"]} == {("setuid", "bin/ping")}
    assert doc["distro"]["osv_ecosystem"] == "Alpine:v3.19"
