"""Build caches a real spack wrote and signed (tests/fixtures/spack), pushed
through the S3 endpoint as spack pushes or imported with `registry spack
import`: every document spack signed is served byte for byte through the
classic views, verifies with gpg against the key the cache publishes, and the
server's index holds what spack's own index holds. What CI can check without a
spack; tests/clients/test_spack.py runs the real one."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from harness import child_env
from s3api.s3util import s3_client
from s3api.spackput import upload_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "spack"
CACHES = {"v1.1.0-signed": "v3", "v0.23.1-signed": "v2"}
SIGNED = (".spec.manifest.json", ".spec.json.sig")


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def spack_index(root: Path, layout: str) -> set[str]:
    """The specs spack's own index says the cache holds."""
    if layout == "v2":
        db = json.loads((root / "build_cache" / "index.json").read_bytes())
    else:
        manifest = json.loads((root / "v3/manifests/index/index.manifest.json").read_bytes())
        h = manifest["data"][0]["checksum"]
        db = json.loads((root / "blobs" / "sha256" / h[:2] / h).read_bytes())
    return {h for h, e in db["database"]["installs"].items() if e.get("in_buildcache")}


def served_index(url: str, layout: str) -> set[str]:
    if layout == "v2":
        db = requests.get(f"{url}/build_cache/index.json", timeout=30).json()
    else:
        manifest = requests.get(f"{url}/v3/manifests/index/index.manifest.json",
                                timeout=30).json()
        h = manifest["data"][0]["checksum"]
        db = requests.get(f"{url}/blobs/sha256/{h[:2]}/{h}", timeout=30).json()
    return {h for h, e in db["database"]["installs"].items() if e.get("in_buildcache")}


def published_key(url: str, layout: str) -> tuple[str, bytes]:
    """(fingerprint, armored key) as `spack buildcache keys --install` finds them."""
    if layout == "v2":
        (fpr,) = requests.get(f"{url}/build_cache/_pgp/index.json", timeout=30).json()["keys"]
        return fpr, requests.get(f"{url}/build_cache/_pgp/{fpr}.pub", timeout=30).content

    def blob_of(path: str) -> bytes:
        h = requests.get(f"{url}/{path}", timeout=30).json()["data"][0]["checksum"]
        return requests.get(f"{url}/blobs/sha256/{h[:2]}/{h}", timeout=30).content

    (fpr,) = json.loads(blob_of("v3/manifests/key/keys.manifest.json"))["keys"]
    return fpr, blob_of(f"v3/manifests/key/{fpr}.key.manifest.json")


@pytest.fixture
def gpg_home():
    home = tempfile.mkdtemp(prefix="g", dir="/tmp")  # short: gpg-agent's socket path
    yield home
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("how", ["s3", "import"])
@pytest.mark.parametrize("name", sorted(CACHES))
def test_a_cache_spack_signed_is_served_unchanged(registry, tmp_path, gpg_home, name, how):
    layout, root = CACHES[name], FIXTURES / name
    cache = f"fx-{uuid.uuid4().hex[:10]}"
    if how == "s3":
        s3 = s3_client(registry)
        s3.create_bucket(Bucket=cache)
        upload_dir(s3, cache, root)
    else:
        done = subprocess.run(
            [sys.executable, "-m", "registry", "spack", "import", str(root), "--cache", cache,
             "--data", str(registry.data_dir)],
            capture_output=True, text=True, env=child_env(), timeout=120)
        assert done.returncode == 0 and "0 refused" in done.stdout, done.stdout + done.stderr
    url = f"{registry.url}/spack/{cache}"

    want = spack_index(root, layout)
    assert len(want) == 2
    deadline = time.monotonic() + 20
    while served_index(url, layout) != want and time.monotonic() < deadline:
        time.sleep(0.5)  # an import reaches the server's state within 0.5 s
    assert served_index(url, layout) == want

    fpr, key = published_key(url, layout)
    assert gpg_home and subprocess.run(
        ["gpg", "--batch", "--homedir", gpg_home, "--import"], input=key,
        capture_output=True).returncode == 0
    signed = {rel: data for rel, data in files(root).items() if rel.endswith(SIGNED)}
    assert len(signed) == 2
    for rel, data in files(root).items():
        if "/index" in rel or rel.endswith("index.json.hash") \
                or rel.startswith("v3/manifests/key/keys"):
            continue  # indexes are the server's own (compared above)
        r = requests.get(f"{url}/{rel}", timeout=30)
        assert r.status_code == 200, (rel, r.status_code)
        assert r.content == data, rel  # byte for byte: signatures stay valid
        assert r.headers["ETag"]
        again = requests.get(f"{url}/{rel}", headers={"If-None-Match": r.headers["ETag"]},
                             timeout=30)
        assert again.status_code == 304, rel
    for rel in signed:
        verified = subprocess.run(
            ["gpg", "--batch", "--homedir", gpg_home, "--status-fd", "1", "--verify"],
            input=requests.get(f"{url}/{rel}", timeout=30).content, capture_output=True)
        assert f"VALIDSIG {fpr}".encode() in verified.stdout, (rel, verified.stderr)

    # The same specs are images over OCI, their tarballs the layers.
    for h in want:
        tag = next(r for r in signed if h in r).rsplit("/", 1)[-1]
        stem = tag.split(".spec.")[0]
        pkg = "trivial-root" if "trivial-root" in stem else "trivial-dep"
        version_tag = f"{pkg}-1.0-{h}.spack"
        r = requests.get(f"{registry.url}/v2/{cache}/manifests/{version_tag}",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                         timeout=60)
        assert r.status_code == 200, r.text
        layer = r.json()["layers"][-1]["digest"]
        blob = requests.get(f"{registry.url}/v2/{cache}/blobs/{layer}", timeout=60).content
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer
        tarballs = {"sha256:" + hashlib.sha256(d).hexdigest() for rel, d in files(root).items()
                    if rel.endswith(".spack") or rel.startswith("blobs/")}
        assert layer in tarballs
