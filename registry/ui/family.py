"""The /ui/ family: the dashboard's routes, and its errors as HTML pages.

Pages are routed with `BROWSE` (anyone may ask; each page shows only what the caller
may pull, asking `AccessControl.allowed`) or, for a page about one repository or
cache, `PULL` on it, as the API does; forms POST with the action they perform.
Each page module adds its routes in its `register(family)`."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from registry.api.common import Context
from registry.api.families import PatternFamily
from registry.core.access import BROWSE
from registry.core.errors import RegistryError
from registry.ui import (
    pages_compose,
    pages_home,
    pages_login,
    pages_repo,
    pages_search,
    pages_spack,
)
from registry.ui.render import page
from registry.ui.static import static_file


class UiFamily(PatternFamily):
    """The web dashboard; errors are HTML pages in its layout."""

    name = "ui"
    prefix = "/ui/"
    root = "/ui"

    def __init__(self) -> None:
        super().__init__()
        # The handlers' context, for error pages in the layout: set by the wiring once
        # it is built (app.build_dispatcher); None renders a bare page.
        self.context: Context | None = None
        self.add("GET", r"static/(?P<file>[A-Za-z0-9_.-]{1,64})", static_file, BROWSE)
        pages_home.register(self)
        pages_repo.register(self)
        pages_login.register(self)
        pages_search.register(self)
        pages_spack.register(self)
        pages_compose.register(self)

    def error_body(self, err: RegistryError, request: web.BaseRequest,
                   headers: dict[str, str]) -> web.StreamResponse:
        # A browser shown a Basic challenge pops a password dialog: the dashboard asks
        # with its own login page instead (the 401 stays, for scripts).
        headers.pop("WWW-Authenticate", None)
        ctx = self.context
        login = "/ui/login?next=" + quote(request.path_qs[:1000], safe="")
        if ctx is None:
            text = f"{err.status} {err.message}"
            return web.Response(status=err.status, text=text, headers=headers)
        return page(request, ctx, "error.html", status=err.status, headers=headers,
                    status_code=err.status, message=err.message, login=login)


def build() -> UiFamily:
    """The dashboard family with every page registered."""
    return UiFamily()
