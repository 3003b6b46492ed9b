"""Serving over TLS, with several worker processes, and the command line around it."""

from __future__ import annotations

import json
import subprocess
import sys

import requests
from harness import child_env
from pushing import OCI_CONFIG, OCI_MANIFEST, push_blob, put_manifest
from tlsutil import make_cert


def test_tls_serves_https_and_blobs(start_registry, tmp_path):
    cert, key = make_cert(tmp_path)
    reg = start_registry(config=f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n',
                         scheme="https", verify=str(cert))
    assert reg.url.startswith("https://")
    data = b"over tls" * 100_000
    digest = push_blob(reg.url, "tls/repo", data, verify=str(cert))
    r = requests.get(f"{reg.url}/v2/tls/repo/blobs/{digest}", verify=str(cert))
    assert r.status_code == 200 and r.content == data
    r = requests.get(f"{reg.url}/v2/tls/repo/blobs/{digest}", verify=str(cert),
                     headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    # Plain http on the TLS port is refused rather than served in clear text.
    plain = reg.url.replace("https://", "http://")
    try:
        r = requests.get(f"{plain}/v2/", timeout=5)
        assert r.status_code == 400 or r.status_code >= 400
    except requests.RequestException:
        pass


def test_workers_share_the_port_and_the_store(start_registry):
    reg = start_registry(config="[server]\nworkers = 2\n")
    children = subprocess.run(["pgrep", "-P", str(reg.pid)], capture_output=True, text=True)
    assert len(children.stdout.split()) == 2
    digests = [push_blob(reg.url, "w/repo", f"blob {i}".encode()) for i in range(20)]
    # Every request may land on either worker: all must see every write.
    for d in digests:
        session = requests.Session()
        assert session.head(f"{reg.url}/v2/w/repo/blobs/{d}").status_code == 200
    reg.stop()
    assert reg.process.returncode == 0
    leftover = subprocess.run(["pgrep", "-P", str(reg.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def test_config_check_cli(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[storage]\nauto_mount = false\n')
    out = subprocess.run([sys.executable, "-m", "registry", "config", "check", str(good),
                          "--show"], capture_output=True, text=True, env=child_env())
    assert out.returncode == 0
    assert json.loads(out.stdout.split("\n", 1)[1])["storage"]["auto_mount"] is False
    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\nmanifest_max_bytes = "big"\n')
    out = subprocess.run([sys.executable, "-m", "registry", "config", "check", str(bad)],
                         capture_output=True, text=True, env=child_env())
    assert out.returncode == 1
    assert "[limits] manifest_max_bytes: expected an integer" in out.stderr


def test_serve_refuses_bad_config_clearly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "registry", "serve", "--listen", "nowhere"],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path,
                         env=child_env())
    assert out.returncode == 2
    assert "listen" in out.stderr and "Traceback" not in out.stderr


def test_env_override_storage_root(start_registry, tmp_path):
    root, index = tmp_path / "elsewhere", tmp_path / "idx" / "index.sqlite"
    reg = start_registry(env={"REGISTRY_STORAGE_ROOT": str(root),
                              "REGISTRY_INDEX_PATH": str(index)}, data=False)
    push_blob(reg.url, "env/repo", b"x")
    assert (root / "blobs" / "sha256").is_dir() and index.is_file()


def test_cli_data_beats_environment(start_registry, tmp_path):
    root = tmp_path / "ignored"
    reg = start_registry(env={"REGISTRY_STORAGE_ROOT": str(root)})
    push_blob(reg.url, "env/repo", b"x")
    assert not root.exists()
    assert (reg.data_dir / "storage" / "blobs").is_dir()


def _put_manifest(url: str, repo: str, ref: str, config_digest: str) -> str:
    """A manifest with no layers whose config is the two-byte blob `config_digest`."""
    return put_manifest(url, repo, ref, {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": 2},
        "layers": []})


def test_caches_in_every_worker_see_each_write(start_registry):
    """Tags and revisions are cached per worker; a write in one worker must
    invalidate them in all, so no request ever sees the old tag."""
    reg = start_registry(config="[server]\nworkers = 2\n")
    repo = "w/cache"
    config = push_blob(reg.url, repo, b"{}")

    def resolve_all(n: int = 40) -> set[str | int]:
        seen: set[str | int] = set()
        for _ in range(n):  # a new connection each time lands on either worker
            r = requests.get(f"{reg.url}/v2/{repo}/manifests/t",
                             headers={"Connection": "close"})
            seen.add(r.headers.get("Docker-Content-Digest") if r.status_code == 200
                     else r.status_code)
        return seen

    first = _put_manifest(reg.url, repo, "t", config)
    assert resolve_all() == {first}
    doc_b = push_blob(reg.url, repo, b"[]")
    second = _put_manifest(reg.url, repo, "t", doc_b)
    assert resolve_all() == {second}
    def tag_lists(n: int = 20) -> set[tuple[str, ...]]:
        return {tuple(requests.get(f"{reg.url}/v2/{repo}/tags/list",
                                   headers={"Connection": "close"}).json()["tags"])
                for _ in range(n)}

    assert tag_lists() == {("t",)}
    assert requests.delete(f"{reg.url}/v2/{repo}/manifests/t").status_code == 202
    assert resolve_all() == {404}
    assert tag_lists() == {()}
    third = _put_manifest(reg.url, repo, "t", config)
    assert third == first and resolve_all() == {first}
    assert requests.delete(f"{reg.url}/v2/{repo}/manifests/{first}").status_code == 202
    assert resolve_all() == {404}
    r = requests.get(f"{reg.url}/v2/{repo}/manifests/{first}", headers={"Connection": "close"})
    assert r.status_code == 404

    # Blob links are cached too: a deleted blob disappears from every worker.
    def blob_status(n: int = 20) -> set[int]:
        return {requests.get(f"{reg.url}/v2/{repo}/blobs/{doc_b}",
                             headers={"Connection": "close"}).status_code for _ in range(n)}

    assert blob_status() == {200}
    assert requests.delete(f"{reg.url}/v2/{repo}/blobs/{doc_b}").status_code == 202
    assert blob_status() == {404}
