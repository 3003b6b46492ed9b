"""The dashboard's session cookie in the guard, in process: read for the `ui` family
only and only without an Authorization header; a session is never a Bearer token nor
a token a session (even once either was verified and cached); a password change or a
removed user ends the session; a cookie that proves nobody is anonymous and marked
stale, never a 401."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from registry.auth.guard import Guard
from registry.auth.logins import Logins
from registry.auth.passwords import hash_password
from registry.auth.rules import Rule, Rules
from registry.auth.sessions import SESSION, STALE
from registry.auth.store import AuthStore, User
from registry.auth.tokens import TokenError, TokenKeys
from registry.core.access import IDENTITY, PULL, Scope
from registry.core.areas import AuthArea
from registry.core.errors import Unauthorized
from registry.storage.memory import MemoryDriver

HIDDEN = Scope("ui", "team/app", PULL)


async def _guard() -> Guard:
    store = AuthStore(AuthArea(MemoryDriver()), ttl=0)
    await store.put_user(User("alice", hash_password("pw-1")))
    keys = TokenKeys(store)
    await keys.load()
    return Guard(Logins(store, {}, 10), keys, Rules([Rule.parse("team/* user:alice pull")]),
                 "registry")


def _request(cookie: str | None = None, authorization: str | None = None):
    headers = {}
    if cookie is not None:
        headers["Cookie"] = f"registry_session={cookie}"
    if authorization is not None:
        headers["Authorization"] = authorization
    return make_mocked_request("GET", "/ui/", headers=headers)


def test_a_session_opens_the_dashboard_and_nothing_else() -> None:
    async def run() -> None:
        guard = await _guard()
        who = await guard.login(_request(), "alice", "pw-1")
        session = guard.sessions.issue(who)
        request = _request(session.token)
        await guard.check(request, HIDDEN)
        assert request[IDENTITY].name == "alice" and request[SESSION].csrf == session.csrf
        # Other families never read the cookie: anonymous, refused.
        for family in ("oci", "api", "spack", "s3"):
            with pytest.raises(Exception) as refused:
                await guard.check(_request(session.token), Scope(family, "team/app", PULL))
            assert getattr(refused.value, "status", 403) in (401, 403), family
        # With an Authorization header the cookie is not looked at either.
        with pytest.raises(Unauthorized):
            await guard.check(_request(session.token, "Basic Ym9iOng="), HIDDEN)
        # A session is no Bearer token, though verified (and cached) as a session.
        with pytest.raises(Unauthorized):
            await guard.check(_request(authorization=f"Bearer {session.token}"),
                              Scope("oci", "team/app", PULL))
        with pytest.raises(TokenError):
            await guard.keys.verify(session.token, "registry", "registry")
        assert guard.keys.known(session.token, "registry") is None
        # Nor is a token a session.
        token = guard.keys.issue({"iss": "registry", "aud": "registry", "sub": "alice",
                                  "kind": "user", "cred": who.stamp, "access": []}, 300)
        await guard.keys.verify(token.token, "registry", "registry")
        request = _request(token.token)
        await guard.check(request, Scope("ui", "", "browse"))
        assert request[IDENTITY].anonymous and request[STALE]

    asyncio.run(run())


def test_a_password_change_or_a_removed_user_ends_the_session() -> None:
    async def run() -> None:
        guard = await _guard()
        store = guard.logins.store
        session = guard.sessions.issue(await guard.login(_request(), "alice", "pw-1"))
        await store.put_user(User("alice", hash_password("pw-2")))
        request = _request(session.token)
        with pytest.raises(Unauthorized):  # anonymous now, and team/* is not theirs
            await guard.check(request, HIDDEN)
        assert request[STALE] and SESSION not in request
        session = guard.sessions.issue(await guard.login(_request(), "alice", "pw-2"))
        assert await guard.sessions.identify(session.token) is not None
        await store.remove_user("alice")
        assert await guard.sessions.identify(session.token) is None
        for junk in ("", "x", "e30.e30.e30", "a" * 5000, "\udcff"):
            assert await guard.sessions.identify(junk) is None

    asyncio.run(run())
