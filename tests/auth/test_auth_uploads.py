"""An upload session belongs to whoever opened it: another caller with push on the same
repository finds nothing at its Location (404 BLOB_UPLOAD_UNKNOWN), on every worker
and after a restart, since the owner is kept with the session's state."""

from __future__ import annotations

import hashlib

import requests
from authutil import PASSWORDS, add_user, auth_config, token
from harness import launch

RULES = ["team/* group:writers pull,push,delete", "drop/* anonymous pull,push,delete"]
WRITER = ("writer", PASSWORDS["writer"])
OTHER = ("other", "other-pw-6")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _attempts(reg, location: str, auth=None, headers=None) -> dict[str, requests.Response]:
    """GET, PATCH, PUT and DELETE on an upload's Location, as one caller."""
    url, kw = reg.url + location, {"auth": auth, "headers": headers or {}, "timeout": 30}
    return {
        "GET": requests.get(url, **kw),
        "PATCH": requests.patch(url, data=b"intruder", **kw),
        "PUT": requests.put(f"{url}?digest={_digest(b'intruder')}", data=b"intruder", **kw),
        "DELETE": requests.delete(url, **kw),
    }


def _refused(answers: dict[str, requests.Response]) -> None:
    for method, r in answers.items():
        assert r.status_code == 404, (method, r.status_code, r.text)
        assert r.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN", (method, r.text)


def test_an_upload_session_belongs_to_who_opened_it(tmp_path):
    config = auth_config("", RULES) + "[server]\nworkers = 2\n"
    reg = launch(tmp_path, config=config)
    try:
        add_user(reg, *WRITER, "writers")
        add_user(reg, *OTHER, "writers")
        r = requests.post(f"{reg.url}/v2/team/app/blobs/uploads/", auth=WRITER, timeout=30)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        r = requests.patch(reg.url + location, data=b"first ", auth=WRITER, timeout=30)
        assert r.status_code == 202, r.text
        # Another user who may push there, with a password and with a token.
        _refused(_attempts(reg, location, OTHER))
        bearer = {"Authorization": "Bearer " + token(reg, OTHER,
                                          "repository:team/app:pull,push,delete")}
        _refused(_attempts(reg, location, headers=bearer))
        # Anonymous callers may not push there at all: asked to log in.
        assert {r.status_code for r in _attempts(reg, location).values()} == {401}
    finally:
        reg.stop()
    # After a restart (and on whichever worker): still the writer's, and whole.
    reg = launch(tmp_path, config=config)
    try:
        _refused(_attempts(reg, location, OTHER))
        mine = {"Authorization": "Bearer " + token(reg, WRITER, "repository:team/app:pull,push")}
        r = requests.get(reg.url + location, headers=mine, timeout=30)
        assert r.status_code == 204 and r.headers["Range"] == "0-5", r.text
        data = b"first second"
        r = requests.put(f"{reg.url}{location}?digest={_digest(data)}", data=b"second",
                         auth=WRITER, timeout=30)
        assert r.status_code == 201, r.text
        r = requests.get(f"{reg.url}/v2/team/app/blobs/{_digest(data)}", auth=OTHER, timeout=30)
        assert r.status_code == 200 and r.content == data
    finally:
        reg.stop()


def test_anonymous_sessions_work_as_before(tmp_path):
    reg = launch(tmp_path, config=auth_config("", RULES))
    try:
        add_user(reg, *OTHER, "writers")
        r = requests.post(f"{reg.url}/v2/drop/box/blobs/uploads/", timeout=30)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        assert requests.patch(reg.url + location, data=b"anon ", timeout=30).status_code == 202
        # A user's session is not an anonymous caller's, nor the other way round.
        _refused(_attempts(reg, location, OTHER))
        data = b"anon bytes"
        r = requests.put(f"{reg.url}{location}?digest={_digest(data)}", data=b"bytes",
                         timeout=30)
        assert r.status_code == 201, r.text
    finally:
        reg.stop()
