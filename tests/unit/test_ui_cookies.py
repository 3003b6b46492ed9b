"""The dashboard's cookies and redirects, in process: Secure exactly when the request
came over TLS, always HttpOnly, SameSite=Strict and Path=/ui/; `next` after a login
only ever a page of the dashboard; a form from another origin refused."""

from __future__ import annotations

import ssl

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from registry.core.errors import Denied
from registry.ui.csrf import check_origin
from registry.ui.pages_login import local_next
from registry.ui.render import set_cookie


@pytest.mark.parametrize("tls", [False, True])
def test_cookie_flags(tls: bool) -> None:
    context = ssl.create_default_context() if tls else None
    request = make_mocked_request("GET", "/ui/", sslcontext=context)
    response = web.Response()
    set_cookie(response, request, "registry_session", "value", max_age=60)
    header = response.cookies["registry_session"].OutputString()
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/ui/" in header
    assert ("Secure" in header) is tls


def test_next_stays_on_the_dashboard() -> None:
    for good in ("/ui/", "/ui/r/team/app", "/ui/search?q=hdf5&kind=spack"):
        assert local_next(good) == good
    for bad in (None, "", "/", "//evil.example", "https://evil.example/ui/", "/ui//evil",
                "/ui/\\evil", "/\\evil", "/ui/../v2/", "/ui/..", "/v2/", "javascript:x",
                "/ui/\nSet-Cookie: x", "/ui/ x", "/ui/" + "a" * 2000):
        assert local_next(bad) == "/ui/", bad


def test_a_form_from_another_origin_is_refused() -> None:
    def post(**headers: str) -> web.Request:
        return make_mocked_request("POST", "/ui/logout",
                                   headers={"Host": "registry.example", **headers})

    check_origin(post())
    check_origin(post(Origin="https://registry.example"))
    check_origin(post(Origin="http://registry.example", **{"Sec-Fetch-Site": "same-origin"}))
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Origin": "https://registry.example.evil.example"},
                    {"Sec-Fetch-Site": "cross-site"}):
        with pytest.raises(Denied):
            check_origin(post(**headers))
