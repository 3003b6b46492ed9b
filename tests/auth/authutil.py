"""Helpers for the auth tests: a registry with `[auth] mode = "token"`, its users
and robots made with the real CLI, and pushes with credentials."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests
from harness import RunningRegistry

PASSWORDS = {"reader": "reader-pw-1", "writer": "writer-pw-2", "admin": "admin-pw-3"}
GROUPS = {"reader": "readers", "writer": "writers", "admin": "admins"}
RULES = [
    "public/* anonymous pull",
    "team/* group:readers pull",
    "team group:readers pull",
    "team/* group:writers pull,push,delete",
    "team group:writers pull,push,delete",
    "* group:admins admin",
]


def auth_config(extra: str = "", rules: list[str] | None = None) -> str:
    rule_lines = ", ".join(json.dumps(r) for r in (rules if rules is not None else RULES))
    return f'[auth]\nmode = "token"\nrules = [{rule_lines}]\n{extra}'


def cli(reg: RunningRegistry, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`registry ARGS --data DIR` against the registry's store (as an operator would,
    while it runs)."""
    cmd = [sys.executable, "-m", "registry", *args, "--data", str(reg.data_dir)]
    cfg = Path(reg.data_dir).parent / "registry.toml"
    if cfg.exists():
        cmd += ["--config", str(cfg)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=reg.env,
                          timeout=60)


def add_user(reg: RunningRegistry, name: str, password: str, *groups: str) -> None:
    args = ["users", "add", name, "--password-stdin"]
    for g in groups:
        args += ["--group", g]
    done = cli(reg, *args, stdin=password + "\n")
    assert done.returncode == 0, done.stderr


def add_robot(reg: RunningRegistry, name: str, *scopes: str, expires: str = "30d") -> str:
    args = ["tokens", "create", "--name", name, "--expires", expires]
    for s in scopes:
        args += ["--scope", s]
    done = cli(reg, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    repo: str
    tag: str
    manifest: bytes
    digest: str
    blobs: list[str] = field(default_factory=list)


def push_image(reg: RunningRegistry, auth: tuple[str, str], repo: str, tag: str = "v1",
               note: str = "") -> Image:
    """A small image (config + one layer), pushed with Basic credentials."""
    s = requests.Session()
    s.auth = auth
    config = json.dumps({"architecture": "amd64", "os": "linux", "note": note}).encode()
    layer = f"layer of {repo} {note}".encode()
    for data in (config, layer):
        r = s.post(f"{reg.url}/v2/{repo}/blobs/uploads/?digest={digest_of(data)}", data=data,
                   timeout=30)
        assert r.status_code == 201, r.text
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer), "size": len(layer)}],
    }).encode()
    r = s.put(f"{reg.url}/v2/{repo}/manifests/{tag}", data=manifest, timeout=30,
              headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    return Image(repo, tag, manifest, digest_of(manifest), [digest_of(config), digest_of(layer)])


def token(reg: RunningRegistry, auth: tuple[str, str] | None, *scopes: str) -> str:
    r = requests.get(f"{reg.url}/token", params={"service": "registry", "scope": list(scopes)},
                     auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"]
    return body["token"]


def audit_events(reg: RunningRegistry) -> list[dict]:
    path = Path(reg.data_dir) / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
