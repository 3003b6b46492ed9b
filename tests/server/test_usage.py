"""`registry du` and `GET /api/v1/usage`: bytes per namespace as listed and as
stored, from the index; an admin view when auth is on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests
from api.helpers import call, push_blob
from harness import child_env, launch, wait_for

sys.path.insert(0, str(Path(__file__).parent.parent / "auth"))
from authutil import add_user, auth_config


def du(reg, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "registry", "du", *args, "--data",
                           str(reg.data_dir)], capture_output=True, text=True,
                          env=child_env(), timeout=60)


def test_usage_per_namespace(tmp_path):
    reg = launch(tmp_path)
    try:
        shared = b"s" * 1000
        push_blob(reg, "team/a", shared)
        push_blob(reg, "team/b", shared)  # the same bytes: stored once
        push_blob(reg, "team/b", b"t" * 300)
        push_blob(reg, "solo", b"u" * 50)

        def report():
            r = call(reg, "GET", "/api/v1/usage")
            assert r.status_code == 200, r.text
            return r.json()

        got = wait_for(report, lambda doc: len(doc["namespaces"]) == 2 and
                       doc["namespaces"][1]["logical"] == 2300, deadline=10)
        assert got["namespaces"] == [
            {"namespace": "solo", "repositories": 1, "logical": 50, "unique": 50},
            {"namespace": "team", "repositories": 2, "logical": 2300, "unique": 1300}]
        assert got["total"] == {"logical": 2350, "unique": 1350}
        one = call(reg, "GET", "/api/v1/usage?namespace=team/b").json()
        assert one["namespaces"] == [{"namespace": "team/b", "repositories": 1,
                                      "logical": 1300, "unique": 1300}]
        bad = call(reg, "GET", "/api/v1/usage?namespace=../etc")
        assert bad.status_code == 400 and bad.headers["Content-Type"] == \
            "application/problem+json"
    finally:
        reg.stop()
    # Offline, from the same index.
    done = du(reg, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == {"logical": 2350, "unique": 1350}
    table = du(reg).stdout
    assert "team" in table and "1.3 KiB" in table
    assert du(reg, "Bad Name").returncode == 2


def test_usage_is_an_admin_view_with_auth_on(tmp_path):
    reg = launch(tmp_path, config=auth_config("", ["* group:admins admin",
                                                   "team/* user:dev pull,push"]))
    try:
        add_user(reg, "boss", "boss-pw", "admins")
        add_user(reg, "dev", "dev-pw")
        url = f"{reg.url}/api/v1/usage"
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, auth=("dev", "dev-pw"), timeout=10).status_code == 403
        r = requests.get(url, auth=("boss", "boss-pw"), timeout=10)
        assert r.status_code == 200 and "total" in r.json()
    finally:
        reg.stop()
