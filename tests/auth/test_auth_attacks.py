"""Hostile tokens, credentials and token requests: the right 4xx with the spec's
error JSON, never a 500, and nothing written."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from pathlib import Path

import jwt
import pytest
import requests
from authutil import PASSWORDS, add_user, audit_events, auth_config, token
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from harness import launch

ADMIN = ("admin", PASSWORDS["admin"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing(reg) -> tuple[str, bytes]:
    signing = Path(reg.data_dir) / "storage" / "_auth" / "signing"
    kid = sorted(p.name for p in signing.iterdir())[0]
    return kid, (signing / kid).read_bytes()


def _claims(**over) -> dict:
    now = int(time.time())
    claims = {"iss": "registry", "aud": "registry", "sub": "admin", "kind": "user",
              "iat": now, "nbf": now, "exp": now + 300,
              "access": [{"type": "repository", "name": "team/evil",
                          "actions": ["pull", "push", "delete"]}]}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _forged(reg) -> dict[str, str]:
    kid, pem = _signing(reg)
    key = serialization.load_pem_private_key(pem, None)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    other_key = ec.generate_private_key(ec.SECP256R1())
    head_hs = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(_claims()).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{head_hs}.{body}".encode(), hashlib.sha256).digest())
    none_head = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return {
        "expired": jwt.encode(_claims(iat=now - 900, nbf=now - 900, exp=now - 600), pem,
                              "ES256", {"kid": kid}),
        "not yet valid": jwt.encode(_claims(nbf=now + 600, exp=now + 900), pem, "ES256",
                                    {"kid": kid}),
        "wrong audience": jwt.encode(_claims(aud="elsewhere"), pem, "ES256", {"kid": kid}),
        "wrong issuer": jwt.encode(_claims(iss="elsewhere"), pem, "ES256", {"kid": kid}),
        "no expiry": jwt.encode(_claims(exp=None), pem, "ES256", {"kid": kid}),
        "alg none": f"{none_head}.{body}.",
        "HS256 with the public key": f"{head_hs}.{body}.{hs_sig}",
        "wrong key": jwt.encode(_claims(), other_key, "ES256", {"kid": kid}),
        "unknown kid": jwt.encode(_claims(), other_key, "ES256", {"kid": "nope"}),
        "garbage": "not.a.token",
        "empty": "",
        "huge": "a" * 7000,
        "unknown user": jwt.encode(_claims(sub="mallory"), pem, "ES256", {"kid": kid}),
        "unknown kind": jwt.encode(_claims(kind="god"), pem, "ES256", {"kid": kid}),
    }


CASES = ["expired", "not yet valid", "wrong audience", "wrong issuer", "no expiry",
         "alg none", "HS256 with the public key", "wrong key", "unknown kid", "garbage",
         "empty", "huge", "unknown user", "unknown kind"]


@pytest.mark.parametrize("case", CASES)
def test_bad_tokens_get_401_and_write_nothing(secured, case):
    reg, _ = secured
    forged = _forged(reg)[case]
    data = b"evil bytes " + case.encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(f"{reg.url}/v2/team/evil/blobs/uploads/?digest={digest}", data=data,
                      headers={"Authorization": f"Bearer {forged}"}, timeout=30)
    assert r.status_code == 401, r.text
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    # The real token is good: the forged one wrote nothing.
    good = token(reg, ADMIN, "repository:team/evil:pull")
    h = requests.head(f"{reg.url}/v2/team/evil/blobs/{digest}",
                      headers={"Authorization": f"Bearer {good}"}, timeout=30)
    assert h.status_code == 404


BAD_BASIC = {
    "not base64": "Basic %%%%",
    "no colon": "Basic " + base64.b64encode(b"adminpassword").decode(),
    "not utf-8": "Basic " + base64.b64encode(b"admin:\xff\xfe").decode(),
    "empty": "Basic ",
    "unknown scheme": "Digest username=admin",
    "wrong password": "Basic " + base64.b64encode(b"admin:wrong").decode(),
    "glob user": "Basic " + base64.b64encode(b"adm*:whatever").decode(),
    "path user": "Basic " + base64.b64encode(b"../../etc/passwd:x").decode(),
}


@pytest.mark.parametrize("case", list(BAD_BASIC))
def test_bad_basic_credentials_get_401(secured, case):
    reg, _ = secured
    r = requests.post(f"{reg.url}/v2/team/evil/blobs/uploads/",
                      headers={"Authorization": BAD_BASIC[case]}, timeout=30)
    assert r.status_code == 401, r.text
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")


# Raw header bytes (latin-1 on the wire: \xff is one byte that is not UTF-8).
MALFORMED = {
    "bearer not utf-8": b"Bearer abc\xffdef",
    "bearer not ascii": "Bearer \u00e9.\u00e9.\u00e9".encode(),
    "bearer nothing": b"Bearer",
    "basic not base64": b"Basic \xff\xfe",
    "basic password not utf-8": b"Basic " + base64.b64encode(b"writer:\xff"),
    "basic user not utf-8": b"Basic " + base64.b64encode(b"\xff:pw"),
    "basic no colon": b"Basic " + base64.b64encode(b"writer"),
    "scheme not utf-8": b"\xff\xfe abc",
    "sigv4 key not utf-8": b"AWS4-HMAC-SHA256 Credential=\xff/20240101/us-east-1/s3/"
                           b"aws4_request, SignedHeaders=host, Signature=" + b"0" * 64,
}
# (method, path, what the family answers with): OCI and the JSON API in JSON with a
# challenge, the UI in HTML, Spack's classic views in plain text, S3 in S3's XML.
FAMILIES = [("POST", "/v2/team/app/blobs/uploads/", "oci"), ("GET", "/v2/", "oci"),
            ("GET", "/api/v1/", "api"), ("GET", "/ui/", "ui"),
            ("GET", "/spack/team/cache/build_cache/index.json", "spack"),
            ("GET", "/s3/team/key", "s3")]


def _raw(reg, method: str, path: str, authorization: bytes) -> tuple[int, dict, bytes]:
    host, port = reg.host.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, path)
        conn.putheader("Authorization", authorization)
        conn.putheader("Content-Length", "0")
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_credentials_are_refused_in_each_familys_way(secured, case):
    """Whatever bytes an Authorization header holds, every family answers its own
    refusal, never a 500 (a Bearer byte that was not UTF-8 crashed PyJWT)."""
    reg, _ = secured
    for method, path, family in FAMILIES:
        status, headers, body = _raw(reg, method, path, MALFORMED[case])
        where = (case, path, status, body[:200])
        if family == "s3":
            # S3's own answers to a credential it cannot use (botocore knows them).
            assert status in (400, 403), where
            assert b"<Error><Code>" in body and b"InternalError" not in body, where
            continue
        assert status == 401, where
        if family == "ui":
            # A page asks with its login form: a challenge would pop the browser's
            # password dialog.
            assert "www-authenticate" not in headers, where
            assert headers["content-type"].startswith("text/html"), where
            continue
        # The challenge an anonymous caller gets there: OCI clients ask the realm.
        assert headers["www-authenticate"].startswith(
            "Bearer realm=" if family == "oci" else 'Basic realm="registry"'), where
        if family == "oci":
            assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED", where


def test_a_token_asking_for_more_gets_only_what_is_granted(secured):
    reg, _ = secured
    t = token(reg, ("reader", PASSWORDS["reader"]), "repository:team/app:pull,push,delete",
              "repository:other/app:pull")
    claims = jwt.decode(t, options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "team/app",
                                 "actions": ["pull"]}]
    assert claims["sub"] == "reader" and claims["aud"] == "registry"
    # Pushing with it: the reader may not, so 403 DENIED.
    r = requests.post(f"{reg.url}/v2/team/app/blobs/uploads/",
                      headers={"Authorization": f"Bearer {t}"}, timeout=30)
    assert r.status_code == 403
    assert "WWW-Authenticate" not in r.headers  # no better token to ask for
    # A writer's pull-only token: 401 insufficient_scope, naming the scope to ask for.
    w = token(reg, ("writer", PASSWORDS["writer"]), "repository:team/app:pull")
    r = requests.post(f"{reg.url}/v2/team/app/blobs/uploads/",
                      headers={"Authorization": f"Bearer {w}"}, timeout=30)
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="repository:team/app:pull,push"' in challenge


@pytest.mark.parametrize("params,why", [
    ({"scope": " ".join(f"repository:a/r{i}:pull" for i in range(10_000))}, "too many"),
    ({"scope": "repository:team/*:pull"}, "glob in a name"),
    ({"scope": "repository:../etc:pull"}, "bad name"),
    ({"scope": "nonsense"}, "malformed"),
    ({"scope": "repository:team/app:pull", "service": "other"}, "wrong service"),
])
def test_bad_token_requests_get_400(secured, params, why):
    reg, _ = secured
    r = requests.post(f"{reg.url}/token", data={
        "grant_type": "password", "username": "admin", "password": PASSWORDS["admin"],
        "service": "registry", **params}, timeout=60)
    assert r.status_code == 400, (why, r.text[:300])
    assert "errors" in r.json()


def test_a_megabyte_password_is_refused_without_hashing(secured):
    reg, _ = secured
    r = requests.post(f"{reg.url}/token", data={
        "grant_type": "password", "username": "admin", "password": "x" * (1 << 20)},
        timeout=60)
    assert r.status_code == 413
    # In a header it never gets past the HTTP parser's limit.
    raw = base64.b64encode(b"admin:" + b"x" * (1 << 20)).decode()
    r = requests.get(f"{reg.url}/v2/", headers={"Authorization": f"Basic {raw}"}, timeout=60)
    assert 400 <= r.status_code < 500


def test_oauth2_post_and_get_tokens_work(secured):
    reg, _ = secured
    r = requests.post(f"{reg.url}/token", data={
        "grant_type": "password", "username": "writer", "password": PASSWORDS["writer"],
        "service": "registry", "scope": "repository:team/app:pull,push",
        "client_id": "test"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["access_token"] == body["token"] and body["expires_in"] == 300
    r = requests.post(f"{reg.url}/v2/team/app/blobs/uploads/",
                      headers={"Authorization": f"Bearer {body['token']}"}, timeout=30)
    assert r.status_code == 202
    r = requests.post(f"{reg.url}/token", data={"grant_type": "password", "username":
                                                "writer", "password": "nope"}, timeout=30)
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    # An anonymous token carries only what anonymous may do.
    t = token(reg, None, "repository:public/base:pull,push", "repository:team/app:pull")
    claims = jwt.decode(t, options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "public/base",
                                 "actions": ["pull"]}]


def test_failed_logins_are_rate_limited_and_audited(tmp_path):
    reg = launch(tmp_path, config=auth_config("login_attempts = 10\n"))
    add_user(reg, "victim", "the-real-one")
    bad = "Basic " + base64.b64encode(b"victim:guess").decode()
    statuses = [requests.get(f"{reg.url}/v2/", headers={"Authorization": bad},
                             timeout=30).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    r = requests.get(f"{reg.url}/v2/", headers={"Authorization": bad}, timeout=30)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    failed = [e for e in audit_events(reg) if e["event"] == "login_failed"
              and e.get("attempted") == "victim"]
    assert len(failed) >= 10
    assert all(e["address"] == "127.0.0.1" and e["request_id"] for e in failed)
    assert "guess" not in (Path(reg.data_dir) / "audit.log").read_text()
    # The user themself, from this address, waits too (the guesser cannot tell).
    good = "Basic " + base64.b64encode(b"victim:the-real-one").decode()
    assert requests.get(f"{reg.url}/v2/", headers={"Authorization": good},
                        timeout=30).status_code == 429
    reg.stop()


def test_a_pull_challenge_asks_for_push_too(secured):
    """Clients that take the challenge's scope as given (spack, oras-py) check a
    blob before they push: their first token must already carry push, for those
    who may push (and only pull for the others)."""
    reg, _ = secured
    r = requests.head(f"{reg.url}/v2/team/app/blobs/sha256:{'0' * 64}", timeout=30)
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert 'scope="repository:team/app:pull,push"' in challenge
    for user, actions in (("writer", ["pull", "push"]), ("reader", ["pull"])):
        t = token(reg, (user, PASSWORDS[user]), "repository:team/app:pull,push")
        claims = jwt.decode(t, options={"verify_signature": False})
        assert claims["access"] == [{"type": "repository", "name": "team/app",
                                     "actions": actions}]
