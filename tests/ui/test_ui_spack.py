"""The dashboard's Spack pages and its composer in Chromium, against a real server: a
cache holding builds made by a real spack 1.1.0 (tests/spackreal.py: trivial-root,
which links trivial-dep), generated ones to filter, and one whose variants and
compiler are hostile markup. The caches, a cache's specs filtered and paged, a spec
and its dependency's page, the composer (a suggestion picked as one types, the image
the same as the API's for the same request and really there), its errors, CSRF, and
a hidden cache under token auth."""

from __future__ import annotations

import pytest
import requests
from auth.authutil import add_user, auth_config
from harness import wait_for
from pushing import push_spack_oci
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from spackreal import real_specs

from loadtest.spackgen import FakeSpec, make_spec

IMG = "<img src=x onerror=window.__pwned=1>"
SCRIPT = '"><script>window.__pwned=1</script>'


def no_script_ran(driver) -> None:
    assert driver.execute_script("return typeof window.__pwned") == "undefined"


def hostile_spec() -> FakeSpec:
    spec = make_spec("hostile", "2.0", seed=7)
    spec.nodes[0]["parameters"].update(evil=IMG, quoted=[SCRIPT, "b"])
    spec.nodes[0]["annotations"]["compiler"] = SCRIPT
    return spec


def index_holds(reg, cache: str, n: int) -> None:
    def specs() -> int:
        r = requests.get(f"{reg.url}/api/v1/spack/{cache}/specs", timeout=30)
        return len(r.json()["specs"]) if r.status_code == 200 else 0
    assert wait_for(specs, lambda got: got >= n) >= n


@pytest.fixture(scope="module")
def cache(registry) -> tuple[str, dict[str, FakeSpec]]:
    name = registry.repo("uispack")
    specs = real_specs()
    specs["hostile"] = hostile_spec()
    for seed, (version, target) in enumerate([("1.0", "x86_64_v2"), ("1.1", "x86_64_v3"),
                                              ("1.1.2", "x86_64_v2")]):
        specs[f"mylib-{version}"] = make_spec("mylib", version, target=target, seed=seed)
    for spec in specs.values():
        push_spack_oci(registry, name, spec)
    index_holds(registry, name, len(specs))
    return name, specs


def texts(driver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def test_caches_specs_filters_a_spec_and_its_dependency(registry, web, cache):
    name, specs = cache
    root, dep = specs["trivial-root"], specs["trivial-dep"]
    driver = web.open(f"{registry.url}/ui/spack/")
    web.follow(driver.find_element(By.LINK_TEXT, name))
    assert sorted(texts(driver, "a.spec")) == sorted(s.name for s in specs.values())
    web.shot("cache", docs="dashboard-spack-cache")
    no_script_ran(driver)  # the hostile compiler is in the list
    # The filters: a name prefix, a version as spack reads `@1.1` (1.1 and 1.1.x), a
    # target, a compiler by name; a page of one with a link to the next.
    for query, want in (("name=mylib&version=1.1", 2), ("name=myl&target=x86_64_v2", 2),
                        ("compiler=gcc&name=mylib", 3), ("compiler=gcc@12.2&name=mylib", 3),
                        ("compiler=gcc@12.3", 0), ("name=trivial", 2)):
        driver.get(f"{registry.url}/ui/spack/{name}?{query}")
        assert len(texts(driver, "a.spec")) == want, query
    driver.get(f"{registry.url}/ui/spack/{name}?name=mylib&n=2")
    first = texts(driver, "a.spec")
    web.follow(driver.find_element(By.ID, "next"))
    assert len(first) == 2 and texts(driver, "a.spec") == ["mylib"]
    # The real spack's root: its dependency linked with its types, followed.
    driver.get(f"{registry.url}/ui/spack/{name}?name=trivial-root")
    web.follow(driver.find_element(By.CSS_SELECTOR, "a.spec"))
    commands = driver.find_element(By.ID, "install-commands").text
    assert f"spack install --cache-only trivial-root/{root.hash}" in commands
    assert f"oci://{registry.host}/{name}" in commands
    row = driver.find_element(By.CSS_SELECTOR, "table.deps tbody tr")
    assert "build" in row.text and "link" in row.text and "run" in row.text
    web.shot("spec", docs="dashboard-spack-spec")
    web.follow(row.find_element(By.CSS_SELECTOR, "a.dep"))
    assert driver.current_url.endswith(f"/ui/spack/{name}/-/{dep.hash}")
    assert driver.find_element(By.ID, "spec-name").text == "trivial-dep"
    assert texts(driver, "ul.dependents a") == ["trivial-root@1.0"]
    # Hostile variants and compiler are text, and no script ran on any page.
    driver.get(f"{registry.url}/ui/spack/{name}/-/{specs['hostile'].hash}")
    shown = texts(driver, "td.variant")
    assert IMG in shown and f"{SCRIPT},b" in shown
    assert driver.find_element(By.ID, "compiler").text == SCRIPT
    no_script_ran(driver)
    web.size(390, 844)
    driver.get(driver.current_url)
    wide = driver.execute_script(
        "return [...document.querySelectorAll('body *')].filter(e => "
        "e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' "
        "+ e.className + '#' + e.id).slice(0, 8)")
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1"), wide
    web.shot("spec-phone")
    no_script_ran(driver)


def test_bad_input_gets_4xx_pages_and_the_host_is_never_reflected(registry, cache):
    name, specs = cache
    base = f"{registry.url}/ui/spack/{name}"
    for path, status in ((f"{base}?version=%3Cscript%3E", 400), (f"{base}?n=0", 400),
                         (f"{base}?name=a&name=b", 400), (f"{base}?last=x", 400),
                         (f"{base}/-/NOTAHASH", 400), (f"{base}/-/{'a' * 32}", 404),
                         (f"{registry.url}/ui/spack/no/such/cache", 404),
                         (f"{base}/-/suggest?q=%3Cx", 400),
                         (f"{registry.url}/ui/compose?cache=no/such", 404)):
        r = requests.get(path, timeout=30)
        assert r.status_code == status, (path, r.text[:300])
        assert r.headers["Content-Type"].startswith("text/html"), path
        assert "<script>" not in r.text
    r = requests.get(f"{base}/-/{specs['trivial-root'].hash}", timeout=30,
                     headers={"Host": 'evil.example"><script>x</script>'})
    assert r.status_code == 200 and "evil.example" not in r.text
    assert "oci://REGISTRY-HOST/" in r.text
    r = requests.get(f"{base}/-/suggest", params={"q": "myl"}, timeout=30)
    assert [s["name"] for s in r.json()["suggestions"]] == ["mylib"] * 3
    r = requests.get(f"{base}/-/suggest", params={"q": "/" + specs["trivial-dep"].hash[:5]},
                     timeout=30)
    assert [s["hash"] for s in r.json()["suggestions"]] == [specs["trivial-dep"].hash]


def test_compose_through_the_form(registry, web, cache):
    name, specs = cache
    root = specs["trivial-root"]
    driver = web.open(f"{registry.url}/ui/compose?cache={name}")
    box = driver.find_element(By.ID, "specs")
    box.send_keys("trivial-r")
    pick = WebDriverWait(driver, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions button.suggestion"))
    assert len(pick) == 1
    web.shot("compose-suggest", docs="dashboard-compose-suggest")
    pick[0].click()
    assert box.get_attribute("value") == f"trivial-root@1.0 /{root.hash}"
    driver.find_element(By.ID, "target").send_keys("zen4")
    web.shot("compose-form")
    web.follow(driver.find_element(By.ID, "submit"))
    digest = driver.find_element(By.ID, "digest").text
    reference = driver.find_element(By.ID, "reference").text
    commands = driver.find_element(By.ID, "pull-commands").text
    assert f"podman pull {registry.host}/{name}/images@{digest}" in commands
    assert f"apptainer pull docker://{registry.host}/{name}/images@{digest}" in commands
    link = driver.find_element(By.ID, "manifest-link").get_attribute("href")
    assert link.endswith(f"/ui/r/{name}/images/-/{digest}")
    web.shot("composed", docs="dashboard-compose")
    no_script_ran(driver)
    # The API answers the same image for the same request, and it is there.
    api = requests.post(f"{registry.url}/api/v1/spack/{name}/images", timeout=60,
                        json={"specs": [f"trivial-root@1.0 /{root.hash}"], "target": "zen4"})
    assert api.status_code == 201, api.text
    assert (api.json()["digest"], api.json()["reference"]) == (digest, reference)
    manifest = requests.get(f"{registry.url}/v2/{name}/images/manifests/{digest}", timeout=30,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert manifest.status_code == 200
    for layer in manifest.json()["layers"]:
        assert requests.head(f"{registry.url}/v2/{name}/images/blobs/{layer['digest']}",
                             timeout=30).status_code == 200
    # A spec the cache lacks: the 404 names it, the form is kept.
    box = driver.find_element(By.ID, "specs")
    box.clear()
    box.send_keys("nosuchpkg@2")
    driver.find_element(By.ID, "target").clear()
    web.follow(driver.find_element(By.ID, "submit"))
    assert "nosuchpkg@2" in driver.find_element(By.ID, "error").text
    assert driver.find_element(By.ID, "specs").get_attribute("value") == "nosuchpkg@2"
    web.shot("compose-404")
    # One that does not fit the target: 409 with each candidate's reason.
    box = driver.find_element(By.ID, "specs")
    box.clear()
    box.send_keys("mylib@1.1:1.1.0")
    driver.find_element(By.ID, "target").send_keys("x86_64_v2")
    web.follow(driver.find_element(By.ID, "submit"))
    assert "mylib@1.1:1.1.0" in driver.find_element(By.ID, "error").text
    assert "x86_64_v3" in driver.find_element(By.CSS_SELECTOR, "#problem table").text
    no_script_ran(driver)
    # Phone width: the error page and the cache's list lay out without a wide body.
    web.size(390, 844)
    for url in (driver.current_url, f"{registry.url}/ui/spack/{name}"):
        if url != driver.current_url:
            driver.get(url)
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"), url
    web.shot("cache-phone")


def test_compose_statuses_and_csrf(registry, cache):
    name, _ = cache
    url = f"{registry.url}/ui/compose/{name}/images"
    session = requests.Session()
    assert session.get(f"{registry.url}/ui/compose", timeout=30).status_code == 200
    token = session.cookies["registry_csrf"]
    for form, status, shown in (
            ({"specs": "nosuchpkg", "csrf": token}, 404, "nosuchpkg"),
            ({"specs": "mylib@1.1:1.1.0", "target": "x86_64_v2", "csrf": token}, 409,
             "mylib@1.1:1.1.0"),
            ({"specs": "mylib %gcc", "csrf": token}, 400, "%gcc"),
            ({"specs": "mylib", "target": "<b>nope</b>", "csrf": token}, 400,
             "&lt;b&gt;nope&lt;/b&gt;"),
            ({"specs": "mylib", "csrf": "x" * 43}, 403, "CSRF"),
            ({"specs": "mylib"}, 403, "CSRF")):
        r = session.post(url, data=form, timeout=60)
        assert r.status_code == status, (form, r.text[:500])
        assert r.headers["Content-Type"].startswith("text/html")
        assert shown in r.text, form
    assert requests.post(url, data={"specs": "mylib", "csrf": token}, timeout=30,
                         cookies={}).status_code == 403  # the field without its cookie


def test_a_hidden_cache_under_token_auth(start_registry, web):
    reg = start_registry(config=auth_config(rules=["pub/* anonymous pull",
                                                   "* group:writers pull,push"]))
    add_user(reg, "writer", "writer-pw-9", "writers")
    spec = real_specs()["trivial-dep"]
    for name in ("pub/cache", "hid/cache"):
        push_spack_oci(reg, name, spec, auth=("writer", "writer-pw-9"))
    listing = lambda: requests.get(f"{reg.url}/api/v1/spack/", timeout=30,  # noqa: E731
                                   auth=("writer", "writer-pw-9")).json()["caches"]
    wait_for(listing, lambda got: len(got) == 2)
    driver = web.open(f"{reg.url}/ui/spack/")
    assert texts(driver, "table.caches a") == ["pub/cache"]
    driver.get(f"{reg.url}/ui/compose")
    assert texts(driver, "#cache option") == ["pub/cache"]
    for path in ("/ui/spack/hid/cache", f"/ui/spack/hid/cache/-/{spec.hash}",
                 "/ui/spack/hid/cache/-/suggest?q=t"):
        driver.get(reg.url + path)
        assert driver.find_element(By.TAG_NAME, "h1").text.startswith("401"), path
        assert driver.find_element(By.LINK_TEXT, "Log in")
    web.shot("hidden-401")
    r = requests.post(f"{reg.url}/ui/compose/pub/cache/images", data={"specs": "x"},
                      timeout=30)
    assert r.status_code == 401 and "WWW-Authenticate" not in r.headers
    no_script_ran(driver)
