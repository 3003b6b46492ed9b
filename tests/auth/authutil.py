"""Helpers for the auth tests: a registry with `[auth] mode = "token"`, its users
and robots made with the real CLI, and pushes with credentials."""

from __future__ import annotations

import json
import subprocess
import sys
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
