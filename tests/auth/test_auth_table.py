"""Every family's endpoints x every kind of caller -> the exact status.

The table is generated: each endpoint says what it touches (resource, action)
and what it answers when allowed; each caller says what the test believes it may
do (a model written here independently of the server's rules). Refusals: S3 says
403 to everyone; a caller without valid credentials gets 401; a logged-in caller
gets 403.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import requests
from authutil import PASSWORDS, add_robot, cli, token
from harness import wait_for
from pushing import push_image

ZERO = "sha256:" + "0" * 64
ANY = "*"

# name: (method, path, resource, action, allowed status). Resource "" is the
# registry as a whole: any caller who logged in.
ENDPOINTS = {
    "oci base": ("GET", "/v2/", "", "pull", 200),
    "oci catalog": ("GET", "/v2/_catalog", "", "pull", 200),
    "oci manifest get": ("GET", "/v2/team/app/manifests/v1", "team/app", "pull", 200),
    "oci manifest head": ("HEAD", "/v2/team/app/manifests/v1", "team/app", "pull", 200),
    "oci blob head": ("HEAD", "/v2/team/app/blobs/{blob}", "team/app", "pull", 200),
    "oci tags": ("GET", "/v2/team/app/tags/list", "team/app", "pull", 200),
    "oci referrers": ("GET", "/v2/team/app/referrers/{manifest}", "team/app", "pull", 200),
    "oci upload start": ("POST", "/v2/team/app/blobs/uploads/", "team/app", "push", 202),
    "oci manifest put bad": ("PUT", "/v2/team/app/manifests/x", "team/app", "push", 400),
    "oci manifest delete": ("DELETE", f"/v2/team/app/manifests/{ZERO}", "team/app", "delete",
                            404),
    "oci blob delete": ("DELETE", f"/v2/team/app/blobs/{ZERO}", "team/app", "delete", 404),
    "oci public get": ("GET", "/v2/public/base/manifests/v1", "public/base", "pull", 200),
    "oci public push": ("POST", "/v2/public/base/blobs/uploads/", "public/base", "push", 202),
    "oci ci get": ("GET", "/v2/team/ci/app/manifests/v1", "team/ci/app", "pull", 200),
    "oci ci push": ("POST", "/v2/team/ci/app/blobs/uploads/", "team/ci/app", "push", 202),
    "oci other get": ("GET", "/v2/other/app/manifests/v1", "other/app", "pull", 200),
    "spack index": ("GET", "/spack/team/app/build_cache/index.json", "team/app", "pull", 404),
    "spack public": ("GET", "/spack/public/base/v3/layout.json", "public/base", "pull", 404),
    "api root": ("GET", "/api/v1/", "", "pull", 200),
    "api specs": ("GET", "/api/v1/spack/team/app/specs", "team/app", "pull", 404),
    "api spack resolve": ("GET", "/api/v1/spack/team/app/resolve?spec=zlib&target=zen3",
                          "team/app", "pull", 404),
    "api requirements": ("GET", "/api/v1/requirements/team/app:v1", "team/app", "pull", 200),
    # The dashboard's pages are listings narrowed to what the caller may pull: anyone
    # whose credentials hold (or who sends none) may ask.
    "ui": ("GET", "/ui/", "", "browse", 200),
    "search": ("GET", "/api/v1/search?q=app", "", "browse", 200),
    "metrics": ("GET", "/metrics", "", "pull", 200),
    "s3 list": ("GET", "/s3/team?list-type=2", "team", "pull", 200),
    "s3 put": ("PUT", "/s3/team/key", "team", "push", 200),
    "s3 other": ("GET", "/s3/other/key", "other", "pull", 404),
}

# What each caller may do, as this test models the config's rules and the robot's
# scope: resource glob -> actions. "logged_in": the registry as a whole.
MODEL = {
    "anonymous": ({"public/*": "pull"}, False),
    "reader": ({"public/*": "pull", "team/*": "pull", "team": "pull"}, True),
    "writer": ({"public/*": "pull", "team/*": "pull push delete",
                "team": "pull push delete"}, True),
    "admin": ({ANY: "pull push delete"}, True),
    "robot": ({"public/*": "pull", "team/ci/*": "pull push"}, True),
    "robot basic": ({"public/*": "pull", "team/ci/*": "pull push"}, True),
    "expired token": ({}, False),
    "tampered token": ({}, False),
    "revoked robot": ({}, False),
    "revoked robot token": ({}, False),
}


def _may(caller: str, resource: str, action: str) -> bool:
    import fnmatch

    grants, logged_in = MODEL[caller]
    if action == "browse":  # anonymous, or credentials that hold
        return logged_in or caller == "anonymous"
    if resource == "":
        return logged_in
    return any(fnmatch.fnmatchcase(resource, pattern) and action in actions.split()
               for pattern, actions in grants.items())


def expected(caller: str, endpoint: str) -> int:
    _method, path, resource, action, ok = ENDPOINTS[endpoint]
    if _may(caller, resource, action):
        return ok
    if path.startswith("/s3/"):
        return 403
    return 401 if not MODEL[caller][1] else 403


@pytest.fixture(scope="module")
def world(secured):
    """The registry with content, and each caller's Authorization header maker."""
    reg, robot = secured
    admin = ("admin", PASSWORDS["admin"])
    app = push_image(reg, auth=admin, repo="team/app")
    push_image(reg, auth=admin, repo="public/base")
    push_image(reg, auth=admin, repo="team/ci/app")
    push_image(reg, auth=admin, repo="other/app")
    seeded = requests.put(f"{reg.url}/s3/team/seed", data=b"seed", auth=admin, timeout=30)
    assert seeded.status_code == 200, seeded.text
    doomed = add_robot(reg, "doomed", "repository:team/*:pull")
    doomed_token = token(reg, ("doomed", doomed), "repository:team/app:pull")
    assert cli(reg, "tokens", "revoke", "doomed").returncode == 0
    # Revocation reaches every worker in the background: poll until a batch of new
    # connections (spread over the workers) refuses the robot.
    assert wait_for(lambda: {requests.get(f"{reg.url}/token", auth=("doomed", doomed),
                                          params={"service": "registry"},
                                          timeout=30).status_code for _ in range(6)},
                    lambda got: got == {401}) == {401}
    admin_token = token(reg, admin, "repository:team/app:pull")
    claims = jwt.decode(admin_token, options={"verify_signature": False})
    head, _body, sig = admin_token.split(".")
    tampered_claims = base64.urlsafe_b64encode(
        json.dumps({**claims, "sub": "admin", "access": [
            {"type": "repository", "name": "team/app", "actions": ["pull", "push",
                                                                   "delete"]}]}).encode()
    ).rstrip(b"=").decode()

    def basic(user: str, password: str) -> dict[str, str]:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def bearer(t: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {t}"}

    def robot_bearer(resource: str, action: str) -> dict[str, str]:
        # As a client does: a token for what it is about to do.
        scope = f"repository:{resource}:{'pull,push' if action == 'push' else action}"
        return bearer(token(reg, ("ci-bot", robot), *([scope] if resource else [])))

    expired = _expired_token(reg, claims)
    makers = {
        "anonymous": lambda r, a: {},
        "reader": lambda r, a: basic("reader", PASSWORDS["reader"]),
        "writer": lambda r, a: basic("writer", PASSWORDS["writer"]),
        "admin": lambda r, a: basic("admin", PASSWORDS["admin"]),
        "robot": robot_bearer,
        "robot basic": lambda r, a: basic("ci-bot", robot),
        "expired token": lambda r, a: bearer(expired),
        "tampered token": lambda r, a: bearer(f"{head}.{tampered_claims}.{sig}"),
        "revoked robot": lambda r, a: basic("doomed", doomed),
        "revoked robot token": lambda r, a: bearer(doomed_token),
    }
    return reg, makers, app


def _expired_token(reg, claims: dict) -> str:
    """A token signed with the registry's own key, expired an hour ago."""
    from pathlib import Path

    signing = Path(reg.data_dir) / "storage" / "_auth" / "signing"
    kid = sorted(p.name for p in signing.iterdir())[0]
    key = (signing / kid).read_bytes()
    now = int(time.time())
    return jwt.encode({**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600},
                      key, algorithm="ES256", headers={"kid": kid})


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("caller", list(MODEL))
def test_status(world, caller, endpoint):
    reg, makers, app = world
    method, path, resource, action, _ = ENDPOINTS[endpoint]
    path = path.format(blob=app.blobs[1], manifest=app.digest)
    headers = makers[caller](resource, action)
    kw = {}
    if method == "PUT":
        kw["data"] = b"{not json" if path.startswith("/v2/") else b"x"
        kw["headers"] = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    headers.update(kw.pop("headers", {}))
    r = requests.request(method, reg.url + path, headers=headers, timeout=30,
                         allow_redirects=False, **kw)
    want = expected(caller, endpoint)
    assert r.status_code == want, (caller, endpoint, r.status_code, r.text[:300])
    if method == "HEAD":
        return  # no body to look into
    if want == 401 and path.startswith("/v2/"):
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert r.headers["WWW-Authenticate"].startswith("Bearer ")
    elif want == 403 and path.startswith("/v2/"):
        assert r.json()["errors"][0]["code"] == "DENIED"
    elif want == 403 and path.startswith("/s3/"):
        assert b"<Code>AccessDenied</Code>" in r.content
