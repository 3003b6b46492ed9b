"""`registry cache warm`: images and a Spack environment's binaries pulled through
a running node cache before a job, each blob from the origin once, only the
platforms asked for; later pulls stay on the node."""

from __future__ import annotations

import json
import subprocess
import sys

import requests
from api.helpers import (
    OCI_INDEX,
    image_manifest,
    image_parts,
    index_manifest,
    push_manifest,
)
from cache_helpers import settled_gets, stored, upstream_gets
from harness import child_env
from pushing import push_spack_oci as push_oci

from loadtest.spackgen import make_spec


def warm(cache, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "registry", "cache", "warm", "--url", cache.url, *args],
        capture_output=True, text=True, env=child_env(), timeout=120)


def test_warm_an_image_index_for_one_platform(origin, start_cache):
    repo = "warm/app"
    children = {}
    for arch in ("amd64", "arm64"):
        config, layers = image_parts(origin, repo, layers=2)
        children[arch] = (push_manifest(origin, repo, image_manifest(config, layers)),
                          [config, *layers])
    index = index_manifest([{**pushed.descriptor,
                             "platform": {"os": "linux", "architecture": arch}}
                            for arch, (pushed, _) in children.items()])
    push_manifest(origin, repo, index, "v1", OCI_INDEX)
    cache = start_cache(origin.url)

    done = warm(cache, f"{repo}:v1", "--platform", "linux/amd64")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 manifests, 3 blobs" in done.stdout and "0 failed" in done.stdout, done.stdout
    for desc in children["amd64"][1]:
        assert settled_gets(origin, f"/v2/{repo}/blobs/{desc['digest']}") == 1
        assert len(stored(cache, desc["digest"])) == desc["size"]
    for desc in children["arm64"][1]:
        assert upstream_gets(origin, f"/v2/{repo}/blobs/{desc['digest']}") == 0
    # A job's pull now costs the origin nothing.
    for desc in children["amd64"][1]:
        r = requests.get(f"{cache.url}/v2/{repo}/blobs/{desc['digest']}", timeout=30)
        assert r.status_code == 200
        assert upstream_gets(origin, f"/v2/{repo}/blobs/{desc['digest']}") == 1


def test_warm_a_spack_environment(origin, start_cache, tmp_path):
    repo = "spack/cache"
    dep = make_spec("zlib", "1.3", tar_size=1 << 20)
    root = make_spec("hdf5", "1.14", deps=[dep], tar_size=2 << 20)
    for spec in (dep, root):
        push_oci(origin.url, repo, spec)
    lock = {"_meta": {"lockfile-version": 6}, "roots": [{"hash": root.hash, "spec": "hdf5"}],
            "concrete_specs": {
                root.hash: {"name": "hdf5", "version": "1.14"},
                dep.hash: {"name": "zlib", "version": "1.3"},
                "a" * 32: {"name": "glibc", "version": "2.36", "external": {"path": "/usr"}}}}
    (tmp_path / "spack.lock").write_text(json.dumps(lock))
    cache = start_cache(origin.url)

    done = warm(cache, "--spack-lock", str(tmp_path / "spack.lock"), "--spack-cache", repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warmed 2 reference(s)" in done.stdout, done.stdout
    for spec in (dep, root):
        assert settled_gets(origin, f"/v2/{repo}/blobs/{spec.tarball_digest}") == 1
        assert stored(cache, spec.tarball_digest) == spec.tarball


def test_what_cannot_be_warmed_is_said(origin, start_cache, tmp_path):
    cache = start_cache(origin.url)
    done = warm(cache, "not a ref")
    assert done.returncode == 2 and "is not a reference" in done.stderr
    done = warm(cache, "nothing/here:v1")
    assert done.returncode == 1 and "failed nothing/here:v1" in done.stderr, done.stderr
    (tmp_path / "bad.lock").write_text("{}")
    done = warm(cache, "--spack-lock", str(tmp_path / "bad.lock"), "--spack-cache", "x")
    assert done.returncode == 2 and "concrete_specs" in done.stderr
