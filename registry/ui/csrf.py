"""CSRF tokens for the dashboard's forms: a random token in a `registry_csrf` cookie
(HttpOnly, SameSite=Strict, Secure under TLS) that every form repeats in a hidden
`csrf` field; a POST whose field does not equal its cookie is refused with 403. A
page sets the cookie when the browser has none (render.page)."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping

from aiohttp import web

from registry.core.errors import Denied

COOKIE = "registry_csrf"
_NEW = "ui.csrf_new"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def csrf_token(request: web.BaseRequest) -> str:
    """The caller's CSRF token: its cookie's, or a new one that the page sets."""
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
    """Refuse a form whose `csrf` field is not the caller's cookie (403 DENIED)."""
    cookie = request.cookies.get(COOKIE, "")
    field = form.get("csrf", "")
    if not _TOKEN.fullmatch(cookie) or not hmac.compare_digest(cookie, field):
        raise Denied("the form's CSRF token is missing or wrong: reload the page and "
                     "send it again")
