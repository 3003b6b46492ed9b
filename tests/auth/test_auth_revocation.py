"""Tokens already issued follow the caller's rights as they are now: a password
change revokes them, and a user's removal from a group or a rule change narrows them,
on every worker, through the same path a robot's revocation takes (the store's
short-lived cache, the rules each worker holds)."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests
from authutil import PASSWORDS, add_user, auth_config, cli
from harness import launch, wait_for

WORKERS = "[server]\nworkers = 2\n"
RULES = ["team/* group:writers pull,push", "* group:admins admin"]


def _statuses(url: str, headers: dict[str, str]) -> list[int]:
    # New connections spread over both workers (SO_REUSEPORT).
    return [requests.post(url, headers=headers, timeout=30).status_code for _ in range(12)]


def _token(reg, user: str, password: str, repo: str) -> dict[str, str]:
    r = requests.get(f"{reg.url}/token", params={
        "service": "registry", "scope": f"repository:{repo}:pull,push"},
        auth=(user, password), timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_a_password_change_revokes_the_tokens_already_issued(tmp_path):
    reg = launch(tmp_path, config=auth_config("login_attempts = 1000\n", RULES) + WORKERS)
    try:
        add_user(reg, "writer", PASSWORDS["writer"], "writers")
        url = f"{reg.url}/v2/team/app/blobs/uploads/"
        old = _token(reg, "writer", PASSWORDS["writer"], "team/app")
        assert set(_statuses(url, old)) == {202}  # both workers have seen it
        done = cli(reg, "users", "passwd", "writer", "--password-stdin", stdin="new-pw-4\n")
        assert done.returncode == 0, done.stderr
        got = wait_for(lambda: _statuses(url, old), lambda s: set(s) == {401}, 10)
        assert set(got) == {401}, got
        r = requests.post(url, headers=old, timeout=30)
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert 'realm="' in r.headers["WWW-Authenticate"]  # where to get a new one
        # The new password's tokens work; the old password does not.
        assert set(_statuses(url, _token(reg, "writer", "new-pw-4", "team/app"))) == {202}
        r = requests.get(f"{reg.url}/token", params={"service": "registry"},
                         auth=("writer", PASSWORDS["writer"]), timeout=30)
        assert r.status_code == 401
    finally:
        reg.stop()


def _hash(reg, password: str) -> str:
    done = subprocess.run([sys.executable, "-m", "registry", "users", "hash",
                           "--password-stdin"], input=password + "\n", capture_output=True,
                          text=True, env=reg.env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_group_removal_and_a_rule_change_narrow_the_tokens_already_issued(tmp_path):
    reg = launch(tmp_path, config=auth_config("", RULES) + WORKERS)
    cfg = tmp_path / "registry.toml"
    try:
        add_user(reg, "writer", PASSWORDS["writer"], "writers")
        bob = _hash(reg, "bob-pw-5")

        def configure(users: list[str], rules: list[str]) -> None:
            listed = ", ".join(f'"{u}"' for u in users)
            cfg.write_text(auth_config(f"users = [{listed}]\n", rules) + WORKERS)
            reg.process.send_signal(signal.SIGHUP)

        configure([f"bob:{bob}:writers"], RULES)
        team = f"{reg.url}/v2/team/app/blobs/uploads/"
        other = f"{reg.url}/v2/team/lib/blobs/uploads/"
        wait_for(lambda: requests.get(f"{reg.url}/v2/", auth=("bob", "bob-pw-5"),
                                      timeout=30).status_code, lambda s: s == 200, 10)
        bobs = _token(reg, "bob", "bob-pw-5", "team/app")
        writers = _token(reg, "writer", PASSWORDS["writer"], "team/lib")
        assert set(_statuses(team, bobs)) == {202}
        assert set(_statuses(other, writers)) == {202}
        # Bob leaves the group (same password): his token no longer pushes.
        configure(["bob:" + bob], RULES)
        got = wait_for(lambda: _statuses(team, bobs), lambda s: set(s) == {403}, 10)
        assert set(got) == {403}, got
        assert set(_statuses(other, writers)) == {202}
        # The rule that let writers push goes: the writer's token no longer pushes.
        configure(["bob:" + bob], ["team/* group:writers pull", "* group:admins admin"])
        got = wait_for(lambda: _statuses(other, writers), lambda s: set(s) == {403}, 10)
        assert set(got) == {403}, got
        # What they still may do, the same tokens still do.
        r = requests.get(f"{reg.url}/v2/team/lib/tags/list", headers=writers, timeout=30)
        assert r.status_code == 200 and r.json()["tags"] == [], r.text
    finally:
        reg.stop()
