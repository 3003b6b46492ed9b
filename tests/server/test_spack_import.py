"""`registry spack import DIR`: a build cache spack wrote to a directory becomes a
cache of a running registry, through the same checks as an S3 push."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from harness import child_env, wait_for

from loadtest.spackdir import v2_names, write_v2, write_v3
from loadtest.spackgen import make_spec

CACHE = "site/cache"


def spack_import(data: Path, src: Path, cache: str = CACHE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "registry", "spack", "import", str(src), "--cache", cache,
         "--data", str(data)], capture_output=True, text=True, env=child_env(), timeout=120)


def v3_index(reg, cache: str = CACHE) -> dict:
    r = requests.get(f"{reg.url}/spack/{cache}/v3/manifests/index/index.manifest.json")
    if r.status_code == 404:
        return {}
    assert r.status_code == 200, r.text
    blob = r.json()["data"][0]["checksum"]
    r = requests.get(f"{reg.url}/spack/{cache}/blobs/sha256/{blob[:2]}/{blob}")
    assert r.status_code == 200
    return r.json()["database"]["installs"]


@pytest.fixture
def reg(start_registry, tmp_path):
    return start_registry(tmp_path / "server")


def test_import_v3_and_v2_directories(reg, tmp_path):
    dep = make_spec("zlib", "1.3")
    root = make_spec("hdf5", "1.14", deps=[dep], tar_size=3 << 20)
    src3 = tmp_path / "v3cache"
    write_v3(src3, [dep, root])
    old = make_spec("bzip2", "1.0.8", fmt=4)
    src2 = tmp_path / "v2cache"
    write_v2(src2, [old])

    done = spack_import(reg.data_dir, src3)
    assert done.returncode == 0, done.stderr
    assert "7 files stored" in done.stdout and "1 skipped" in done.stdout, done.stdout
    # Not a terminal: a progress line every tenth of the way, ending at all files.
    assert "7/7 files" in done.stderr, done.stderr

    installs = wait_for(lambda: v3_index(reg), lambda got: len(got) == 2)
    assert set(installs) == {dep.hash, root.hash}
    # Installable over OCI: the image made from the manifest has the same tarball.
    r = requests.get(f"{reg.url}/v2/{CACHE}/manifests/{root.tag}",
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200, r.text
    assert r.json()["layers"][-1]["digest"] == root.tarball_digest
    r = requests.get(f"{reg.url}/v2/{CACHE}/blobs/{root.tarball_digest}")
    assert hashlib.sha256(r.content).hexdigest() == root.tarball_digest.split(":")[1]

    done = spack_import(reg.data_dir, src2)
    assert done.returncode == 0, done.stderr
    spec_name, tar_name = v2_names(old)

    def v2_index() -> dict:
        r = requests.get(f"{reg.url}/spack/{CACHE}/build_cache/index.json")
        return r.json()["database"]["installs"] if r.status_code == 200 else {}

    assert old.hash in wait_for(v2_index, lambda got: old.hash in got)
    r = requests.get(f"{reg.url}/spack/{CACHE}/build_cache/{tar_name}")
    assert r.status_code == 200 and r.content == old.tarball
    r = requests.get(f"{reg.url}/spack/{CACHE}/build_cache/{spec_name}")
    assert json.loads(r.content)["spec"] == old.doc


def test_reimport_stores_nothing_twice(reg, tmp_path):
    spec = make_spec("zstd", "1.5")
    src = tmp_path / "cache"
    write_v3(src, [spec])
    assert spack_import(reg.data_dir, src).returncode == 0
    again = spack_import(reg.data_dir, src)
    assert again.returncode == 0, again.stderr
    assert "2 already there" in again.stdout and "0 refused" in again.stdout, again.stdout


def test_bad_files_are_refused_and_never_listed(reg, tmp_path):
    good = make_spec("good", "1.0")
    missing = make_spec("missing", "1.0")
    corrupt = make_spec("corrupt", "1.0")
    src = tmp_path / "cache"
    write_v3(src, [good, missing, corrupt])
    # A manifest naming a tarball that is not there.
    h = hashlib.sha256(missing.tarball).hexdigest()
    (src / "blobs" / "sha256" / h[:2] / h).unlink()
    # A tarball whose bytes do not match its name.
    h = hashlib.sha256(corrupt.tarball).hexdigest()
    (src / "blobs" / "sha256" / h[:2] / h).write_bytes(gzip.compress(b"not it"))

    done = spack_import(reg.data_dir, src)
    assert done.returncode == 1
    refused = [line for line in done.stderr.splitlines() if "refused" in line]
    assert any(corrupt.hash in line for line in refused), done.stderr
    assert any(missing.hash in line for line in refused), done.stderr
    assert any(h in line for line in refused), done.stderr  # the corrupt blob itself
    installs = wait_for(lambda: v3_index(reg), lambda got: good.hash in got)
    assert set(installs) == {good.hash}
    r = requests.get(f"{reg.url}/v2/{CACHE}/blobs/sha256:{h}")
    assert r.status_code == 404


def test_what_is_not_a_cache_is_refused(reg, tmp_path):
    (tmp_path / "empty").mkdir()
    done = spack_import(reg.data_dir, tmp_path / "empty")
    assert done.returncode == 2 and "no build cache" in done.stderr
    done = spack_import(reg.data_dir, tmp_path / "nope")
    assert done.returncode == 2 and "not a directory" in done.stderr
    src = tmp_path / "cache"
    write_v3(src, [make_spec("x", "1")])
    done = spack_import(reg.data_dir, src, cache="Not_A_Bucket/x")
    assert done.returncode == 2 and "cannot be a build cache" in done.stderr


def spack_list(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "registry", "spack", "list", "--data", str(data), *args],
        capture_output=True, text=True, env=child_env(), timeout=120)


def test_imported_specs_are_listed_by_the_cli_and_the_api(reg, tmp_path):
    """What another process wrote to the store (an import here, another replica
    in production) reaches the server's spec index without a request for it."""
    dep = make_spec("zlib", "1.3", target="icelake")
    root = make_spec("hdf5", "1.14", deps=[dep], target="zen3")
    src = tmp_path / "cache"
    write_v3(src, [dep, root])
    assert spack_import(reg.data_dir, src).returncode == 0

    listed = spack_list(reg.data_dir, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["cache"], r["name"], r["hash"]) for r in rows] == [
        (CACHE, "hdf5", root.hash), (CACHE, "zlib", dep.hash)]
    assert rows[0]["dependencies"] == [{"name": "zlib", "hash": dep.hash}]
    text = spack_list(reg.data_dir, "--target", "zen3")
    assert text.stdout.splitlines() == [
        f"{root.hash[:7]} hdf5@1.14 %gcc@=12.2.0 arch=linux-debian12-zen3  {CACHE}  "
        f"{len(root.tarball) / 1024:.1f} KiB"], text.stdout
    assert "1 spec in 1 cache" in text.stderr
    assert spack_list(reg.data_dir, "--cache", "other").stdout == ""

    def api() -> list[str]:
        r = requests.get(f"{reg.url}/api/v1/spack/{CACHE}/specs")
        return [s["name"] for s in r.json()["specs"]] if r.status_code == 200 else []

    assert wait_for(api, lambda got: got == ["hdf5", "zlib"], deadline=30) == ["hdf5", "zlib"]
    r = requests.delete(f"{reg.url}/v2/{CACHE}/manifests/{root.tag}")
    assert r.status_code == 202
    assert wait_for(api, lambda got: got == ["zlib"]) == ["zlib"]
