"""A real `podman pull` of an image named by the origin, with the node cache as the
origin's mirror in registries.conf, as a site configures compute nodes: podman
asks the cache, the cache fetches each blob from the origin once, and a second
podman (another node's storage) pulls it with no further origin traffic."""

from __future__ import annotations

import json
import subprocess

from cache_helpers import ORIGIN_CONFIG, settled_gets, upstream_gets
from clients.conftest import write_configs
from clients.oci_layout import build_image


def podman_env(root, origin_host: str, cache_host: str) -> dict[str, str]:
    root.mkdir()
    env, _ = write_configs(root, origin_host)
    conf = root / "home" / ".config" / "containers" / "registries.conf"
    conf.write_text(
        "unqualified-search-registries = []\n\n"
        "[[registry]]\n"
        f'location = "{origin_host}"\n'
        "insecure = true\n\n"
        "[[registry.mirror]]\n"
        f'location = "{cache_host}"\n'
        "insecure = true\n")
    return env


def podman(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "--cgroup-manager=cgroupfs", "--events-backend=file",
                           *args], env=env, capture_output=True, text=True, timeout=300,
                          cwd=env["HOME"])


def test_podman_pulls_through_a_mirror_entry(origin, start_cache, tmp_path):
    image = build_image(tmp_path / "layout", "v1", layers=3)
    repo = "mirror/app"
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    copied = subprocess.run(
        ["skopeo", "--policy", str(policy), "copy", "--dest-tls-verify=false",
         f"oci:{image.path}:v1", f"docker://{origin.host}/{repo}:v1"],
        capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    cache = start_cache(origin.url, extra=ORIGIN_CONFIG)  # its access log shows podman

    for node in ("node1", "node2"):
        env = podman_env(tmp_path / node, origin.host, cache.host)
        pulled = podman(env, "pull", f"{origin.host}/{repo}:v1")
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        listed = podman(env, "image", "inspect", "--format", "{{.Digest}}",
                        f"{origin.host}/{repo}:v1")
        assert listed.stdout.strip() == image.digest, listed.stdout + listed.stderr

    for digest in image.layer_digests:
        assert settled_gets(origin, f"/v2/{repo}/blobs/{digest}") == 1
        assert upstream_gets(cache, f"/v2/{repo}/blobs/{digest}") == 2  # both nodes
