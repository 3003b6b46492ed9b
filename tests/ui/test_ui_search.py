"""The home page and the search results page in Chromium, on the shared token-auth
registry (tests/ui/conftest.py): anonymous callers see only public content (recent
pushes, storage usage, results), a login shows more; facets and filter chips are links;
the next page follows the API's cursor; hostile annotations and labels run no script
and show literally; bad parameters give a 400 page saying why."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import requests
from selenium.webdriver.common.by import By

from .conftest import HOSTILE, PASSWORDS


def _texts(driver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def _query(driver) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(driver.current_url).query)


def test_home_and_search_follow_the_caller(auth_registry, web):
    url = auth_registry.url
    driver = web.open(f"{url}/ui/")
    recent = _texts(driver, "#recent td:first-child a")
    assert {"pub/hello", "pub/tool", "pub/cache"} <= set(recent)
    assert not [r for r in recent if r.startswith("team/")]
    usage = _texts(driver, "#usage tr.usage-row td:first-child")
    assert usage == ["pub"]  # team/* is hidden from anonymous callers: its bytes too
    web.shot("home", docs="dashboard-home")

    driver.get(f"{url}/ui/search?q=hello")
    titles = _texts(driver, "li.result a.title")
    repos = _texts(driver, "li.result a[href^='/ui/r/']:not(.title)")
    assert "pub/hello" in repos and not [r for r in repos if r.startswith("team/")], repos
    # What was pushed is shown as text and runs nothing (the CSP runs no inline script).
    values = _texts(driver, "dl.pairs dd")
    assert HOSTILE[0] in values and HOSTILE[1] in values, values
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert titles[repos.index("pub/hello")] == "v1"
    assert driver.find_element(By.CSS_SELECTOR, "li.result a.title").get_attribute(
        "href").startswith(f"{url}/ui/r/pub/hello/-/sha256:")
    web.shot("search-hostile", docs="dashboard-search")

    # A facet adds its filter; the chip removes it again.
    driver.get(f"{url}/ui/search")
    facet = driver.find_element(By.XPATH, "//aside[@id='facets']//a[text()='spack']")
    web.follow(facet)
    assert ("kind", "spack") in _query(driver)
    hrefs = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR,
                                                                    "li.result a.title")]
    assert hrefs and all(h.startswith(f"{url}/ui/spack/pub/cache/-/") for h in hrefs), hrefs
    web.shot("search-facet", docs="dashboard-search-spack")
    web.follow(driver.find_element(By.CSS_SELECTOR, "#chips a.chip"))
    assert ("kind", "spack") not in _query(driver)

    # One result a page: the next link carries the API's cursor, and pages do not repeat.
    driver.get(f"{url}/ui/search?kind=image&n=1")
    first = _texts(driver, "li.result a.title")
    seen = list(first)
    while driver.find_elements(By.ID, "next"):
        driver.get(driver.find_element(By.ID, "next").get_attribute("href"))
        seen += _texts(driver, "li.result a.title")
    # pub/hello, pub/tool, and the zlib build pushed as spack's OCI push does (an image)
    assert len(first) == 1 and len(seen) == len(set(seen)) == 3, seen
    assert {"2.0", "v1"} <= set(seen)

    # At phone width the results page does not scroll sideways.
    web.size(390, 844)
    driver.get(f"{url}/ui/search?q=hello")
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")
    web.shot("search-phone", docs="dashboard-search-phone")
    web.size(1280, 900)

    # Logged in, alice sees team/* in search, recent pushes and usage.
    driver.get(f"{url}/ui/login?next=%2Fui%2Fsearch%3Fq%3Dhello")
    driver.find_element(By.ID, "name").send_keys("alice")
    driver.find_element(By.ID, "password").send_keys(PASSWORDS["alice"])
    web.submit("login-submit")
    assert "team/secret" in _texts(driver, "li.result a[href^='/ui/r/']:not(.title)")
    driver.get(f"{url}/ui/")
    assert "team/secret" in _texts(driver, "#recent td:first-child a")
    assert _texts(driver, "#usage tr.usage-row td:first-child") == ["pub", "team"]


def test_search_parameters_are_checked(auth_registry):
    url = auth_registry.url
    for query, reason in (("n=0", "n must be between"), ("evil=1", "unknown parameter"),
                          ("severity=bogus", "severity must be one of"),
                          ("q=%01", "control character"), ("kind=image&kind=spack",
                                                           "more than once"),
                          ("last=nope", "last is not a position"),
                          ("label=novalue", "label must be KEY=VALUE")):
        r = requests.get(f"{url}/ui/search?{query}", timeout=30)
        assert r.status_code == 400 and r.headers["Content-Type"].startswith("text/html"), query
        assert reason in r.text, (query, r.text[:300])
    # The form's empty fields are dropped: the same search without them.
    r = requests.get(f"{url}/ui/search?q=hello&kind=&os=&severity=", timeout=30,
                     allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/ui/search?q=hello"
