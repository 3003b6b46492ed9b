"""A dashboard page as a response: the template rendered with what every page shows
(who is logged in, the CSRF token its forms carry), and the headers that keep a page
with hostile content harmless: a Content-Security-Policy that runs only our own
script files (no inline script, so an injected `<script>` or `onerror=` runs nothing
even if escaping were ever missed), no framing, no sniffing, no caching."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from registry.api.common import Context
from registry.auth.sessions import COOKIE as SESSION_COOKIE
from registry.auth.sessions import STALE
from registry.core.access import IDENTITY
from registry.ui.csrf import COOKIE, csrf_token, new_token
from registry.ui.templating import render

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
HTML = "text/html; charset=utf-8"


def user_of(request: web.BaseRequest) -> str | None:
    """The logged-in caller's name, None for anonymous (or while auth is off)."""
    who = request.get(IDENTITY)
    if who is None or getattr(who, "anonymous", True):
        return None
    name: str = who.name
    return name


def set_cookie(response: web.StreamResponse, request: web.BaseRequest, name: str,
               value: str, max_age: int | None = None) -> None:
    """A dashboard cookie: HttpOnly, SameSite=Strict, Path=/ui/, Secure under TLS."""
    response.set_cookie(name, value, max_age=max_age, path="/ui/", httponly=True,
                        samesite="Strict", secure=request.secure)


def clear_cookie(response: web.StreamResponse, request: web.BaseRequest, name: str) -> None:
    """Tell the browser to forget a dashboard cookie (with the flags it was set with)."""
    set_cookie(response, request, name, "", max_age=0)


def finish(request: web.BaseRequest, response: web.StreamResponse) -> web.StreamResponse:
    """The security headers, the CSRF cookie when this request made the token, and the
    session cookie cleared when it proved nobody (expired, its user gone)."""
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    made = new_token(request)
    if made is not None:
        set_cookie(response, request, COOKIE, made)
    if request.get(STALE) and SESSION_COOKIE not in response.cookies:
        clear_cookie(response, request, SESSION_COOKIE)
    return response


def page(request: web.BaseRequest, ctx: Context, template: str, status: int = 200,
         headers: dict[str, str] | None = None, **values: Any) -> web.Response:
    """`template` rendered as a full page. Every template gets `user`, `csrf` (the hidden
    field's value for its forms), `auth` (whether logging in means anything here)
    and `path`, besides `values`."""
    common = {"user": user_of(request), "csrf": csrf_token(request),
              "auth": ctx.config.auth.mode == "token", "path": request.path}
    text = render(template, {**common, **values})
    response = web.Response(status=status, text=text, headers={"Content-Type": HTML,
                                                               **(headers or {})})
    finish(request, response)
    return response


def redirect(request: web.BaseRequest, location: str) -> web.Response:
    """303 See Other to a path of the dashboard (after a form)."""
    if not location.startswith("/ui/"):  # never another site, nor "//host"
        location = "/ui/"
    response = web.Response(status=303, headers={"Location": location})
    finish(request, response)
    return response
