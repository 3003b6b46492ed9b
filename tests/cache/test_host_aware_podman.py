"""A real `podman pull` through a host-aware node cache (its host detected: archspec's
target for this machine, no GPU) gets the build of a multi-arch index made for this
machine's target, not the generic amd64 build nor one for a CPU it cannot run, though
podman itself knows nothing of targets; a client that sends `Registry-Host` gets the
build for the host it names; `registry cache stats` shows the host. The decisions
(explicit host, CUDA, nothing fits, by digest, compatibility artifacts) are in
tests/core/test_core_host_aware.py."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile

import archspec.cpu
import pytest
import requests
from api.helpers import push_blob, push_manifest
from harness import child_env
from test_podman_mirror import podman, podman_env

from registry.arch.detect import detect
from registry.arch.host import host_query
from registry.arch.platforms import TARGET

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_with(name: str) -> tuple[bytes, bytes]:
    """(gzipped layer, its tar) holding the file /build-<name>."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = name.encode()
        info = tarfile.TarInfo(f"build-{name}")
        info.size, info.mtime = len(data), 1704067200
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), raw


def push_child(origin, repo: str, name: str, target: str | None) -> dict:
    """An amd64 image labelled build=<name> (and holding /build-<name>), annotated
    with `target` when given: its index entry."""
    gz, raw = layer_with(name)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {"build": name}},
                         "rootfs": {"type": "layers", "diff_ids": [sha256(raw)]}}).encode()
    push_blob(origin, repo, gz)
    push_blob(origin, repo, config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": sha256(config), "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": sha256(gz), "size": len(gz)}]}
    if target:
        doc["annotations"] = {TARGET: target}
    pushed = push_manifest(origin, repo, doc)
    return {"mediaType": OCI_MANIFEST, "digest": pushed.digest, "size": len(pushed.body),
            "platform": {"os": "linux", "architecture": "amd64"}}


def test_podman_pulls_the_build_for_the_caches_host(origin, start_cache, tmp_path):
    host = archspec.cpu.host()
    if host.family.name != "x86_64" or host.name == "x86_64":
        pytest.skip("needs an x86_64 host more specific than the baseline")
    # A target this machine cannot run: a descendant of its own when there is one.
    family = [t for t in archspec.cpu.TARGETS.values()
              if t.family == host.family and not host >= t]
    unfit = sorted(t.name for t in ([t for t in family if host in t.ancestors] or family))[0]
    repo = "hostaware/app"
    children = {name: push_child(origin, repo, name, target) for name, target in
                (("generic", None), ("unfit", unfit), ("mine", host.name))}
    push_manifest(origin, repo, {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                 "manifests": list(children.values())}, "v1", OCI_INDEX)
    cache = start_cache(origin.url, extra="host_aware = true\n")

    env = podman_env(tmp_path / "node", origin.host, cache.host)
    pulled = podman(env, "pull", f"{origin.host}/{repo}:v1")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    shown = podman(env, "image", "inspect", "--format", "{{.Digest}} {{.Labels.build}}",
                   f"{origin.host}/{repo}:v1")
    assert shown.stdout.split() == [children["mine"]["digest"], "mine"], shown.stderr
    assert "host-aware: index tags resolved for" in cache.log()
    # A client that names its own host gets what it asked for, not the cache's choice.
    for header, name in ((f"target={unfit}", "unfit"), ("target=x86_64", "generic")):
        r = requests.get(f"{cache.url}/v2/{repo}/manifests/v1", timeout=30,
                         headers={"Registry-Host": header, "Accept": OCI_MANIFEST})
        assert r.headers.get("Docker-Content-Digest") == children[name]["digest"], r.text

    done = subprocess.run(
        [sys.executable, "-m", "registry", "cache", "stats", "--json",
         "--config", str(cache.cache_dir.parent / "registry.toml")],
        capture_output=True, text=True, env=child_env(), timeout=60)
    stats = json.loads(done.stdout)
    assert stats["host_aware"] is True
    assert stats["host"] == host_query(detect().host), stats
