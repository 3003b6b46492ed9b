"""CSRF tokens for the dashboard's forms, which every form repeats in a hidden `csrf`
field; a POST whose field is not the caller's token is refused with 403.

Logged in, the token is the session's (a random value inside the signed session
token, auth/sessions.py): a token seen before the login, or another session's, is
worth nothing. Anonymous (the login form itself), it is a random value in a
`registry_csrf` cookie (HttpOnly, SameSite=Strict, Secure under TLS) that a page sets
when the browser has none (render.page), checked as a double-submit cookie. A POST
that names its origin (`Origin`, which browsers send with every form POST) must come
from this host, and one a browser marks `Sec-Fetch-Site: cross-site` is refused."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web

from registry.auth.sessions import SESSION, Session
from registry.core.errors import Denied

COOKIE = "registry_csrf"
_NEW = "ui.csrf_new"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def csrf_token(request: web.BaseRequest) -> str:
    """The caller's CSRF token: its session's, its cookie's, or a new one that the
    page sets."""
    session: Session | None = request.get(SESSION)
    if session is not None:
        return session.csrf
    given = request.cookies.get(COOKIE, "")
    if _TOKEN.fullmatch(given):
        return given
    if _NEW not in request:
        request[_NEW] = secrets.token_urlsafe(32)
    token: str = request[_NEW]
    return token


def new_token(request: web.BaseRequest) -> str | None:
    """The token this request made (to be set as the cookie), if it made one."""
    made: str | None = request.get(_NEW)
    return made


def check_csrf(request: web.BaseRequest, form: Mapping[str, str]) -> None:
    """Refuse a form from another site, or whose `csrf` field is not the caller's
    token (its session's, or anonymous its cookie's): 403 DENIED."""
    check_origin(request)
    session: Session | None = request.get(SESSION)
    expected = session.csrf if session is not None else request.cookies.get(COOKIE, "")
    field = form.get("csrf", "")
    if not _TOKEN.fullmatch(expected) or not hmac.compare_digest(expected, field):
        raise Denied("the form's CSRF token is missing or wrong: reload the page and "
                     "send it again")


def check_origin(request: web.BaseRequest) -> None:
    """Refuse a request whose browser says it comes from another site. Only the host
    is compared (a TLS proxy in front may talk plain HTTP to us, so schemes differ)."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise Denied("a form from another site")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    try:
        host = urlsplit(origin).netloc
    except ValueError:
        host = ""
    if not host or host.lower() != request.host.lower():
        raise Denied("a form from another origin", {"origin": origin[:100]})
