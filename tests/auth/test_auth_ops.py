"""Auth across workers and tiers, and the operator's side: revocation reaching the
other worker within a second, mounts that respect namespaces, listings filtered
by rights, a node cache logging in upstream, the CLI, the modes."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys

import requests
from authutil import (
    GROUPS,
    PASSWORDS,
    add_robot,
    add_user,
    audit_events,
    auth_config,
    cli,
    token,
)
from harness import child_env, launch, wait_for
from pushing import push_image

ADMIN = ("admin", PASSWORDS["admin"])


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_revoked_robot_is_refused_by_every_worker_within_a_second(tmp_path):
    config = auth_config("login_attempts = 1000\n", ["ci/* group:admins admin"])
    reg = launch(tmp_path, config=config + "[server]\nworkers = 2\n")
    try:
        robot = add_robot(reg, "deployer", "repository:ci/*:pull,push")
        url = f"{reg.url}/v2/ci/app/blobs/uploads/"
        # New connections spread over both workers (SO_REUSEPORT); each has seen the
        # robot (and cached it) before the revocation.
        tok = requests.get(f"{reg.url}/token", params={
            "service": "registry", "scope": "repository:ci/app:pull,push"},
            auth=("deployer", robot), timeout=30).json()["token"]
        for _ in range(20):
            assert requests.post(url, headers=basic("deployer", robot),
                                 timeout=30).status_code == 202
            assert requests.post(url, headers={"Authorization": f"Bearer {tok}"},
                                 timeout=30).status_code == 202
        assert cli(reg, "tokens", "revoke", "deployer").returncode == 0
        # Every worker learns of the revocation in the background: poll until a batch
        # of new connections (spread over both workers) is refused.
        assert wait_for(lambda: {requests.post(url, headers=basic("deployer", robot),
                                               timeout=30).status_code for _ in range(6)},
                        lambda got: got == {401}) == {401}
        for _ in range(20):
            assert requests.post(url, headers=basic("deployer", robot),
                                 timeout=30).status_code == 401
            assert requests.post(url, headers={"Authorization": f"Bearer {tok}"},
                                 timeout=30).status_code == 401
        assert cli(reg, "tokens", "list").stdout.strip() == ""
    finally:
        reg.stop()


def test_mounts_and_listings_respect_namespaces(secured):
    reg, _ = secured
    secret = push_image(reg, auth=ADMIN, repo="other/secret", note="private")
    layer = secret.blobs[1]
    writer = basic("writer", PASSWORDS["writer"])
    # The writer may push team/*, may not pull other/*: no mount, a normal upload.
    for query in (f"mount={layer}&from=other/secret", f"mount={layer}"):
        r = requests.post(f"{reg.url}/v2/team/stolen/blobs/uploads/?{query}", headers=writer,
                          timeout=30)
        assert r.status_code == 202, r.text
        h = requests.head(f"{reg.url}/v2/team/stolen/blobs/{layer}", headers=writer,
                          timeout=30)
        assert h.status_code == 404
    # The admin may pull it: the mount links it, with a token that names only the
    # target (as the conformance suite and docker clients ask for one) or with Basic.
    # The writer first: nothing it may pull holds the blob yet.
    for user, want in (("writer", 202), ("admin", 201)):
        t = token(reg, (user, PASSWORDS[user]), "repository:team/by-token:pull,push")
        bearer = {"Authorization": f"Bearer {t}"}
        r = requests.post(f"{reg.url}/v2/team/by-token/blobs/uploads/?mount={layer}"
                          "&from=other/secret", headers=bearer, timeout=30)
        assert r.status_code == want, (user, r.text)
    r = requests.post(f"{reg.url}/v2/team/mounted/blobs/uploads/?mount={layer}"
                      "&from=other/secret", headers=basic(*ADMIN), timeout=30)
    assert r.status_code == 201
    # Now team/* holds it, which the writer may pull: a mount finds it there (where
    # the index says it is linked, checked in storage), whatever `from` says.
    r = wait_for(lambda: requests.post(
        f"{reg.url}/v2/team/stolen/blobs/uploads/?mount={layer}&from=other/secret",
        headers=writer, timeout=30), lambda r: r.status_code == 201)
    assert r.status_code == 201, r.text
    # A token without repository scopes still lists what its holder may pull.
    t = token(reg, ("writer", PASSWORDS["writer"]))
    listed = requests.get(f"{reg.url}/v2/_catalog", timeout=30,
                          headers={"Authorization": f"Bearer {t}"}).json()["repositories"]
    assert "team/mounted" in listed and "other/secret" not in listed
    # The catalog, the UI and the bucket list show only what the caller may pull.
    push_image(reg, auth=ADMIN, repo="team/listed")
    listed = requests.get(f"{reg.url}/v2/_catalog", headers=writer, timeout=30).json()
    assert "team/listed" in listed["repositories"]
    assert not [n for n in listed["repositories"] if not n.startswith(("team/", "public/"))]
    everything = requests.get(f"{reg.url}/v2/_catalog", headers=basic(*ADMIN), timeout=30)
    assert "other/secret" in everything.json()["repositories"]
    ui = requests.get(f"{reg.url}/ui/", headers=basic("reader", PASSWORDS["reader"]),
                      timeout=30).text
    assert "team/listed" in ui and "other/secret" not in ui


def test_a_node_cache_logs_in_upstream(secured, tmp_path):
    reg, _ = secured
    pushed = push_image(reg, auth=ADMIN, repo="team/cached", note="through the cache")
    robot = add_robot(reg, "node-cache", "repository:team/*:pull")
    cache = launch(tmp_path / "cache", config=(
        f'[cache]\nupstream = "{reg.url}"\ndir = "{tmp_path / "cache" / "dir"}"\n'
        f'username = "node-cache"\npassword = "{robot}"\n'))
    try:
        r = requests.get(f"{cache.url}/v2/team/cached/manifests/v1", timeout=30, headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 200 and r.content == pushed.manifest
        layer = requests.get(f"{cache.url}/v2/team/cached/blobs/{pushed.blobs[1]}", timeout=30)
        assert hashlib.sha256(layer.content).hexdigest() == pushed.blobs[1].split(":")[1]
        # Outside the robot's scope: the origin refuses, the cache passes it on.
        denied = requests.get(f"{cache.url}/v2/other/secret/manifests/v1", timeout=30)
        assert denied.status_code in (401, 403, 404)
        tokens = [e for e in audit_events(reg) if e["event"] == "token"
                  and e.get("robot") == "node-cache"]
        assert tokens
    finally:
        cache.stop()


def test_users_cli_and_config_users(tmp_path):
    hashed = subprocess.run([sys.executable, "-m", "registry", "users", "hash",
                             "--password-stdin"], input="from-config\n", capture_output=True,
                            text=True, env=child_env(), timeout=60)
    assert hashed.returncode == 0 and hashed.stdout.startswith("scrypt$")
    assert "from-config" not in hashed.stdout
    reg = launch(tmp_path, config=auth_config(
        f'users = ["ops:{hashed.stdout.strip()}:admins"]\n', ["* group:admins admin",
                                                             "team/* group:writers push,pull"]))
    try:
        assert requests.get(f"{reg.url}/v2/", headers=basic("ops", "from-config"),
                            timeout=30).status_code == 200
        add_user(reg, "dev", "first-pw", GROUPS["writer"])
        assert cli(reg, "users", "add", "dev", "--password-stdin", stdin="x\n").returncode == 1
        url = f"{reg.url}/v2/team/app/blobs/uploads/"
        assert requests.post(url, headers=basic("dev", "first-pw"), timeout=30).status_code \
            == 202
        done = cli(reg, "users", "passwd", "dev", "--password-stdin", stdin="second-pw\n")
        assert done.returncode == 0, done.stderr
        assert wait_for(lambda: requests.post(url, headers=basic("dev", "first-pw"),
                                              timeout=30).status_code, lambda s: s == 401) == 401
        assert requests.post(url, headers=basic("dev", "second-pw"), timeout=30).status_code \
            == 202
        listed = cli(reg, "users", "list").stdout
        assert "dev\tgroups=writers" in listed and "second-pw" not in listed
        stored = (reg.data_dir / "storage" / "_auth" / "users" / "dev").read_text()
        assert "second-pw" not in stored and "scrypt$" in stored
        assert cli(reg, "users", "remove", "dev").returncode == 0
        assert wait_for(lambda: requests.post(url, headers=basic("dev", "second-pw"),
                                              timeout=30).status_code, lambda s: s == 401) == 401
        assert cli(reg, "users", "remove", "dev").returncode == 1
        assert cli(reg, "tokens", "create", "--name", "Bad Name", "--scope",
                   "repository:x:pull").returncode == 2
        assert cli(reg, "tokens", "create", "--name", "ok", "--scope",
                   "nonsense").returncode == 2
        assert "second-pw" not in reg.log() and "first-pw" not in reg.log()
    finally:
        reg.stop()


def test_modes(tmp_path):
    def check(text: str) -> subprocess.CompletedProcess:
        path = tmp_path / "c.toml"
        path.write_text(text)
        return subprocess.run([sys.executable, "-m", "registry", "config", "check", str(path)],
                              capture_output=True, text=True, env=child_env(), timeout=60)

    wide = '[server]\nlisten = "0.0.0.0:5000"\n'
    refused = check(wide)
    assert refused.returncode == 1 and 'mode = "token"' in refused.stderr
    assert check(wide + '[auth]\nmode = "open"\n').returncode == 0
    assert check(wide + '[auth]\nmode = "token"\n').returncode == 0
    bad = check('[auth]\nmode = "token"\nrules = ["team/* someone pull", "x y"]\n'
                'users = ["alice:plaintext"]\n')
    assert bad.returncode == 1
    assert bad.stderr.count("[auth]") == 3 and "plaintext" not in bad.stderr
    # Auth off: no token service.
    reg = launch(tmp_path / "off")
    try:
        assert requests.get(f"{reg.url}/token", timeout=30).status_code == 404
    finally:
        reg.stop()


def test_the_audit_log_records_who_did_what(secured):
    reg, robot = secured
    pushed = push_image(reg, auth=ADMIN, repo="team/audited", note="audit")
    r = requests.delete(f"{reg.url}/v2/team/audited/manifests/{pushed.digest}",
                        headers={**basic(*ADMIN), "X-Request-Id": "req-42"}, timeout=30)
    assert r.status_code == 202
    requests.get(f"{reg.url}/token", params={"service": "registry",
                                             "scope": "repository:team/ci/x:pull"},
                 auth=("ci-bot", robot), timeout=30)
    requests.post(f"{reg.url}/v2/other/app/blobs/uploads/",
                  headers=basic("reader", PASSWORDS["reader"]), timeout=30)
    events = audit_events(reg)
    pushes = [e for e in events if e["event"] == "push" and e["resource"] == "team/audited"]
    assert pushes and all(e["user"] == "admin" for e in pushes)
    assert {e["method"] for e in pushes} == {"POST", "PUT"}  # blobs, then the manifest
    deletes = [e for e in events if e["event"] == "delete"]
    assert deletes[-1]["request_id"] == "req-42" and deletes[-1]["user"] == "admin"
    tokens = [e for e in events if e["event"] == "token" and e.get("robot") == "ci-bot"]
    assert tokens[-1]["scopes"] == ["repository:team/ci/x:pull"]
    denied = [e for e in events if e["event"] == "denied" and e.get("user") == "reader"]
    assert denied[-1]["resource"] == "other/app" and denied[-1]["action"] == "push"
    assert all(e["address"] == "127.0.0.1" for e in events)
    assert all(pw not in (reg.data_dir / "audit.log").read_text()
               for pw in PASSWORDS.values())


def test_sighup_reloads_the_rules(tmp_path):
    import signal

    reg = launch(tmp_path, config=auth_config("", ["* group:admins admin"]) +
                 "[server]\nworkers = 2\n")
    try:
        url = f"{reg.url}/v2/public/app/manifests/v1"
        assert requests.get(url, timeout=10).status_code == 401
        # What search shows anonymous callers (kept per caller and rules: core/search.py)
        # follows the new rules, and a repository that appears, in every worker.
        add_user(reg, "admin", PASSWORDS["admin"], "admins")
        push_image(reg, auth=ADMIN, repo="public/tool", tag="v1")

        def searched() -> list[set[str]]:
            return [{x["repository"] for x in requests.get(
                f"{reg.url}/api/v1/search?kind=image", timeout=10).json()["results"]}
                for _ in range(10)]

        assert wait_for(lambda: requests.get(f"{reg.url}/api/v1/search", auth=ADMIN,
                                             timeout=10).json()["results"], bool, 10)
        assert searched() == [set()] * 10
        cfg = tmp_path / "registry.toml"
        cfg.write_text(auth_config("", ["* group:admins admin", "public/* anonymous pull"]) +
                       "[server]\nworkers = 2\n")
        reg.process.send_signal(signal.SIGHUP)
        # Every worker: anonymous pulls of public/* are allowed now (404: nothing there).
        wait_for(lambda: [requests.get(url, timeout=10).status_code for _ in range(10)],
                 lambda got: set(got) == {404}, 10)
        assert wait_for(searched, lambda got: got == [{"public/tool"}] * 10, 10) == \
            [{"public/tool"}] * 10
        push_image(reg, auth=ADMIN, repo="public/new", tag="v1")
        assert wait_for(searched, lambda got: got == [{"public/tool", "public/new"}] * 10,
                        10) == [{"public/tool", "public/new"}] * 10
        cfg.write_text('[auth]\nmode = "token"\nrules = ["broken rule here"]\n'
                       "[server]\nworkers = 2\n")
        reg.process.send_signal(signal.SIGHUP)
        wait_for(reg.log, lambda text: "keeping the old rules" in text, 10)
        assert {requests.get(url, timeout=10).status_code for _ in range(10)} == {404}
    finally:
        reg.stop()
