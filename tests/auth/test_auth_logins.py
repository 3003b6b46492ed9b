"""Failed logins behind a trusted proxy: counted by the client's forwarded address, per
user and per address, so a guesser locks out only itself, whatever it puts in
X-Forwarded-For."""

from __future__ import annotations

import base64

import requests
from authutil import add_user, audit_events, auth_config
from harness import launch

GUESSER, USER = "203.0.113.9", "198.51.100.7"


def _get(reg, user: str, password: str, forwarded: str) -> int:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return requests.get(f"{reg.url}/v2/", timeout=30, headers={
        "Authorization": f"Basic {basic}", "X-Forwarded-For": forwarded}).status_code


def test_a_guesser_behind_the_proxy_locks_out_only_itself(tmp_path):
    reg = launch(tmp_path, config=auth_config("login_attempts = 10\n") +
                 '[server]\ntrusted_proxies = ["127.0.0.1"]\n')
    try:
        add_user(reg, "victim", "the-real-one")
        # The proxy appends the address it saw; what a client sends before it is its
        # own claim, and changing it does not make a new guesser.
        statuses = [_get(reg, "victim", f"guess-{i}", f"10.0.0.{i}, {GUESSER}")
                    for i in range(12)]
        assert statuses == [401] * 10 + [429] * 2
        assert _get(reg, "victim", "the-real-one", GUESSER) == 429
        # Everyone else, through the same proxy, logs in.
        assert _get(reg, "victim", "the-real-one", USER) == 200
        assert _get(reg, "victim", "the-real-one", f"{USER}, 127.0.0.1") == 200
        failed = [e for e in audit_events(reg) if e["event"] == "login_failed"]
        assert {e["address"] for e in failed} == {GUESSER}
        assert {e["proxy"] for e in failed} == {"127.0.0.1"}
        # One address spraying names is refused for every name, after five times the
        # attempts of one name; other addresses are not.
        sprayed = [_get(reg, f"user{i}", "guess", "192.0.2.1") for i in range(51)]
        assert sprayed == [401] * 50 + [429]
        assert _get(reg, "victim", "the-real-one", "192.0.2.1") == 429
        assert _get(reg, "victim", "the-real-one", USER) == 200
    finally:
        reg.stop()


def test_forwarded_addresses_count_only_from_a_trusted_proxy(tmp_path):
    reg = launch(tmp_path, config=auth_config("login_attempts = 3\n"))
    try:
        add_user(reg, "victim", "the-real-one")
        # No trusted proxy: X-Forwarded-For is the client's claim, and the peer counts.
        statuses = [_get(reg, "victim", "guess", f"10.0.0.{i}") for i in range(4)]
        assert statuses == [401] * 3 + [429]
    finally:
        reg.stop()
