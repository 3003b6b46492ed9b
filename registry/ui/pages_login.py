"""Logging in and out of the dashboard: `GET /ui/login` (the form), `POST /ui/login`
(the password checked as every login is, failures counted and refused with 429 as
for Basic credentials; a session cookie on success) and `POST /ui/logout`.

The session (auth/sessions.py) lives in the `registry_session` cookie: HttpOnly,
SameSite=Strict, Path=/ui/, Secure when the request came over TLS, for the session's
lifetime. After a login the browser goes to `next` when that is a page of the
dashboard, else home: never to another site (an open redirect would lend our name to
a phishing link)."""

from __future__ import annotations

import re

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.auth.guard import Guard
from registry.auth.sessions import COOKIE as SESSION_COOKIE
from registry.core.access import BROWSE
from registry.core.errors import Unauthorized
from registry.ui.csrf import COOKIE as CSRF_COOKIE
from registry.ui.csrf import check_csrf
from registry.ui.forms import read_form
from registry.ui.render import clear_cookie, page, redirect, set_cookie

# A page of the dashboard: its path and query, printable ASCII, no backslash (browsers
# read one as a slash), no `//` after /ui/ that a browser could take for a host.
_LOCAL = re.compile(r"/ui/(?![/\\])[!#-\[\]-~]{0,1000}")
MAX_NAME = 256


def register(family: PatternFamily) -> None:
    family.add("GET", r"login", login_form, BROWSE)
    family.add("POST", r"login", login, BROWSE)
    family.add("POST", r"logout", logout, BROWSE)


def local_next(value: str | None) -> str:
    """Where to go after the login: `value` when it is a dashboard page, else home."""
    if value and _LOCAL.fullmatch(value) and "/../" not in value + "/":
        return value
    return "/ui/"


def _guard(ctx: Context) -> Guard | None:
    return ctx.access if isinstance(ctx.access, Guard) else None


async def login_form(request: web.BaseRequest, route: dict[str, str],
                     ctx: Context) -> web.StreamResponse:
    return page(request, ctx, "login.html", needed=_guard(ctx) is not None,
                next=local_next(request.query.get("next")), name="", message="")


async def login(request: web.BaseRequest, route: dict[str, str],
                ctx: Context) -> web.StreamResponse:
    form = await read_form(request)
    check_csrf(request, form)
    target = local_next(form.get("next"))
    guard = _guard(ctx)
    if guard is None:  # auth is off: there is nobody to be
        return redirect(request, target)
    name, password = form.get("name", "")[:MAX_NAME], form.get("password", "")
    try:
        who = await guard.login(request, name, password)
    except Unauthorized:
        # The same words whichever of the two was wrong; TooManyRequests (429) is
        # rendered by the family's error page, with its Retry-After.
        return page(request, ctx, "login.html", status=401, needed=True, next=target,
                    name=name, message="Wrong user name or password.")
    session = guard.sessions.issue(who)
    response = redirect(request, target)
    set_cookie(response, request, SESSION_COOKIE, session.token, max_age=guard.sessions.ttl)
    # The anonymous CSRF cookie is done with: the session carries its own token.
    clear_cookie(response, request, CSRF_COOKIE)
    return response


async def logout(request: web.BaseRequest, route: dict[str, str],
                 ctx: Context) -> web.StreamResponse:
    form = await read_form(request)
    check_csrf(request, form)
    response = redirect(request, "/ui/")
    clear_cookie(response, request, SESSION_COOKIE)
    return response
