"""The dashboard's shell in Chromium: the layout, its own stylesheet and script under
a Content-Security-Policy that runs no inline script, and HTML error pages."""

from __future__ import annotations

import requests
from pushing import push_image
from selenium.webdriver.common.by import By


def test_home_lists_what_was_pushed_and_is_styled(registry, web):
    repo = registry.repo("ui")
    push_image(registry, repo, "v1", [b"ui layer"])
    driver = web.open(f"{registry.url}/ui/")
    links = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "ul.repos a")]
    assert repo in links
    # The stylesheet loaded and applied (the header's background is ours).
    header = driver.find_element(By.CSS_SELECTOR, "header.top")
    assert header.value_of_css_property("background-color") == "rgba(244, 246, 249, 1)"
    assert web.shot("home").stat().st_size > 1000
    # Phone width: the page still lays out (no horizontal scroll of the body).
    web.size(390, 844)
    driver.get(f"{registry.url}/ui/")
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")
    web.shot("home-phone")


def test_pages_carry_a_policy_that_runs_no_inline_script(registry):
    r = requests.get(f"{registry.url}/ui/", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    css = requests.get(f"{registry.url}/ui/static/ui.css", timeout=30)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    again = requests.get(f"{registry.url}/ui/static/ui.css", timeout=30,
                         headers={"If-None-Match": css.headers["ETag"]})
    assert again.status_code == 304
    for path in ("/ui/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/ui/static/nope.css",
                 "/ui/no-such-page"):
        r = requests.get(f"{registry.url}{path}", timeout=30)
        assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html"), path
        assert "passwd" not in r.text
