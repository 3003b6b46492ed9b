"""The dashboard's login sessions: a signed token in a cookie, for the /ui/ family only.

A session is an ES256 JWT signed with the same keys as the API's tokens (so every
replica accepts it) but for another audience (`<service>/ui-session`) and with
`typ: ui-session`: the token endpoint's tokens are refused as sessions, and a session
is refused as a Bearer token (tokens.TokenKeys checks the audience, and so does its
cache of verified tokens). Like a token it names the credentials it was issued for
(`cred`, the stamp of the password hash), so a password change, a removed user or an
expired robot ends it at the next request. It also carries the session's CSRF token
(`csrf`, random): the dashboard's forms must repeat it, so a CSRF token seen before
the login (the anonymous cookie's) is worth nothing after it.

The guard (auth/guard.py) reads the cookie only for the `ui` family and only when
the request has no Authorization header; on the other families a cookie would let
any site's form act with the user's rights (CSRF), so there it is never looked at.
A cookie that proves nobody (expired, forged, its user gone) makes the request
anonymous, never a 401, and the dashboard clears it (`STALE`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

from registry.auth.logins import Logins
from registry.auth.rules import NOBODY, ROBOT, USER, Identity
from registry.auth.tokens import TokenError, TokenKeys

COOKIE = "registry_session"
TTL_S = 8 * 3600  # a working day; then the dashboard asks for the password again
TYPE = "ui-session"
MAX_COOKIE = 4096
# What the guard notes on a request: the Session its cookie proved, or that a session
# cookie came that proves nobody (the dashboard then clears it).
SESSION, STALE = "auth.session", "auth.session_stale"


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session: its cookie's value, its CSRF token, when it ends."""

    token: str
    csrf: str
    expires: float


class Sessions:
    """Issues and checks dashboard sessions (see the module doc)."""

    def __init__(self, keys: TokenKeys, logins: Logins, service: str, issuer: str,
                 ttl: int = TTL_S) -> None:
        self.keys = keys
        self.logins = logins
        self.audience = f"{service}/{TYPE}"
        self.issuer = issuer
        self.ttl = ttl

    def issue(self, who: Identity) -> Session:
        """A new session for `who`, who just proved their credentials."""
        csrf = secrets.token_urlsafe(32)
        claims = {"iss": self.issuer, "aud": self.audience, "sub": who.name,
                  "kind": who.kind, "typ": TYPE, "csrf": csrf}
        if who.stamp:
            claims["cred"] = who.stamp
        issued = self.keys.issue(claims, self.ttl)
        return Session(issued.token, csrf, float(issued.issued_at + issued.expires_in))

    async def identify(self, token: str) -> tuple[Identity, Session] | None:
        """Who the session `token` is, as their record stands now; None when it proves
        nobody (malformed, forged, expired, another kind of token, a user removed or
        whose password changed since)."""
        if len(token) > MAX_COOKIE:
            return None
        try:
            claims = await self.keys.verify(token, self.audience, self.issuer)
        except TokenError:
            return None
        kind, sub, csrf = claims.get("kind"), claims.get("sub"), claims.get("csrf")
        if claims.get("typ") != TYPE or kind not in (USER, ROBOT) \
                or not isinstance(sub, str) or not isinstance(csrf, str):
            return None
        who = self.logins.identity_now(kind, sub) or await self.logins.identity(kind, sub)
        if who is None or (who.stamp and claims.get("cred") != who.stamp):
            return None
        return who, Session(token, csrf, float(claims["exp"]))

    async def of_request(self, request: web.BaseRequest) -> Identity:
        """Who a dashboard request's session cookie names (noted as SESSION), or
        anonymous: without a cookie, or with one that proves nobody (noted as STALE)."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return NOBODY
        found = await self.identify(cookie)
        if found is None:
            request[STALE] = True
            return NOBODY
        who, request[SESSION] = found
        return who
