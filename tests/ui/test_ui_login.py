"""Logging in to the dashboard, in Chromium and over plain HTTP, on a registry with token
auth whose rules hide team/* from anonymous callers: what anonymous sees, the login
form (a failure, then a session cookie with its flags), more to see, CSRF refusals,
the cookie refused by every other family, `next` kept local, logging out."""

from __future__ import annotations

import re
import time

import requests
from selenium.webdriver.common.by import By

from .conftest import PASSWORDS

CSRF = re.compile(r'name="csrf" value="([A-Za-z0-9_-]{43})"')


def _repos(driver) -> set[str]:
    return {a.text for a in driver.find_elements(By.CSS_SELECTOR, "ul.repos a")}


def _form_login(web, name: str, password: str) -> None:
    driver = web.driver
    driver.find_element(By.ID, "name").clear()
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    web.submit("login-submit")


def _csrf(http: requests.Session, url: str) -> str:
    found = CSRF.search(http.get(url, timeout=30).text)
    assert found, "no csrf field"
    return found[1]


def test_login_session_and_logout_in_chromium(auth_registry, web):
    url = auth_registry.url
    driver = web.open(f"{url}/ui/")
    assert {"pub/hello", "pub/tool"} <= _repos(driver) and "team/secret" not in _repos(driver)
    web.shot("home-anonymous")

    web.submit("login")
    assert driver.current_url.startswith(f"{url}/ui/login")
    driver.get(f"{url}/ui/login?next=%2Fui%2F%3Fafter%3Dlogin")
    _form_login(web, "alice", "not her password")
    # The form again, the name kept, no word on which of the two was wrong.
    assert driver.find_element(By.ID, "login-error").text == "Wrong user name or password."
    assert driver.find_element(By.ID, "name").get_attribute("value") == "alice"
    web.shot("login-failed", docs="dashboard-login")

    _form_login(web, "alice", PASSWORDS["alice"])
    assert driver.current_url == f"{url}/ui/?after=login"
    assert driver.find_element(By.ID, "who").text == "alice"
    assert "team/secret" in _repos(driver)
    cookie = driver.get_cookie("registry_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui/" and not cookie["secure"]  # plain HTTP here
    assert 7 * 3600 < cookie["expiry"] - time.time() <= 8 * 3600 + 60
    web.shot("home-logged-in")
    session = cookie["value"]

    # The cookie opens nothing outside /ui/, sent as a cookie or as a Bearer token.
    for path in ("/v2/team/secret/tags/list", "/api/v1/usage"):
        r = requests.get(f"{url}{path}", cookies={"registry_session": session}, timeout=30)
        assert r.status_code == 401, (path, r.status_code)
        r = requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {session}"},
                         timeout=30)
        assert r.status_code == 401, (path, r.status_code)
    hits = requests.get(f"{url}/api/v1/search?q=secret", cookies={"registry_session": session},
                        timeout=30).json()["results"]
    assert [h for h in hits if h["repository"].startswith("team/")] == []

    # Forms must carry the session's CSRF token: none, a made-up one, or one from
    # before the login are refused, as is a form from another origin.
    token = CSRF.search(driver.page_source)[1]
    http = requests.Session()
    http.cookies.set("registry_session", session)
    stale = _csrf(requests.Session(), f"{url}/ui/login")  # an anonymous cookie's token
    http.cookies.set("registry_csrf", stale)
    for form, headers in (({"name": "x"}, {}), ({"csrf": "x" * 43}, {}), ({"csrf": stale}, {}),
                          ({"csrf": token}, {"Origin": "https://evil.example"})):
        r = http.post(f"{url}/ui/logout", data=form, headers=headers, timeout=30,
                      allow_redirects=False)
        assert r.status_code == 403, (form, headers, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html")
    driver.get(f"{url}/ui/")
    assert driver.find_element(By.ID, "who").text == "alice"  # still logged in

    web.submit("logout")
    assert driver.current_url == f"{url}/ui/"
    assert driver.get_cookie("registry_session") is None
    assert driver.find_elements(By.ID, "who") == []
    assert "team/secret" not in _repos(driver)


def test_login_over_http_next_failures_and_stale_cookies(auth_registry, registry):
    url = auth_registry.url
    http = requests.Session()
    csrf = _csrf(http, f"{url}/ui/login")

    def login(name: str, password: str, next_: str = "/ui/") -> requests.Response:
        # Each time anonymous with the same CSRF cookie (a session's forms want its own).
        return requests.post(f"{url}/ui/login", timeout=30, allow_redirects=False, data={
            "csrf": csrf, "name": name, "password": password, "next": next_},
            cookies={"registry_csrf": csrf})

    wrong = login("mallory", "guess")
    assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
    assert 'value="mallory"' in wrong.text and "WWW-Authenticate" not in wrong.headers
    # login_attempts = 3: the fourth failure in a minute is refused before any check.
    login("mallory", "guess")
    login("mallory", "guess")
    refused = login("mallory", "guess")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert refused.headers["Content-Type"].startswith("text/html")

    # After the login the browser goes only to a page of the dashboard.
    for hostile in ("//evil.example/", "https://evil.example/", "/ui//evil.example",
                    "/ui/\\evil.example", "/\\evil.example", "javascript:alert(1)",
                    "/ui/../v2/", "/v2/"):
        r = login("alice", PASSWORDS["alice"], hostile)
        assert r.status_code == 303 and r.headers["Location"] == "/ui/", hostile
    r = login("alice", PASSWORDS["alice"], "/ui/search?q=zlib")
    assert r.headers["Location"] == "/ui/search?q=zlib"
    assert "registry_session" in r.cookies

    # A cookie that proves nobody is anonymous, not a 401, and is cleared.
    r = requests.get(f"{url}/ui/", cookies={"registry_session": "e30.e30.bad"}, timeout=30)
    assert r.status_code == 200 and 'id="login"' in r.text
    assert re.search(r"registry_session=\"?\"?; .*Max-Age=0", r.headers["Set-Cookie"])

    # Without auth there is nobody to log in as.
    r = requests.get(f"{registry.url}/ui/login", timeout=30)
    assert r.status_code == 200 and 'id="not-needed"' in r.text
