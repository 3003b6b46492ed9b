"""The repository and manifest pages in Chromium, against one real registry with token
auth: an image with hostile annotations and labels, an index of two platforms, an SBOM
that refers to the image, and a repository anonymous may not pull that shares a layer.

What the pages show is checked in the browser; `window.__pwned` stays undefined (the
pages escape what was pushed, and the CSP would run no inline script anyway); a
hidden repository is a 401 page and never named in a layer's "also in" list."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from harness import launch, wait_for
from pushing import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    image_config,
    push_blob,
    push_image,
    push_spack_oci,
    put_manifest,
)
from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).parent.parent / "auth"))
from authutil import add_user, auth_config, token

from loadtest.spackgen import make_spec

ADMIN = ("admin", "admin-pw-1")
RULES = ["public/* anonymous pull", "* group:admins admin"]
IMG = '<img src=x onerror=window.__pwned=1>'
SCRIPT = '"><script>window.__pwned=1</script>'
JS_URL = "javascript:window.__pwned=1"
SBOM_TYPE = "application/spdx+json"
SHARED = b"a layer three repositories share"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    reg = launch(tmp_path_factory.mktemp("uirepo"), config=auth_config(
        "login_attempts = 100000\n[index]\npull_flush_seconds = 1\n", rules=RULES))
    add_user(reg, *ADMIN, "admins")
    app = "public/app"
    config = image_config("amd64", config={
        "Env": ["PATH=/usr/bin", f"HOSTILE={SCRIPT}"], "Cmd": ["/bin/app", "--serve"],
        "Labels": {"org.example.evil": IMG, "org.example.quote": SCRIPT}})
    image = push_image(reg, app, "v1", [SHARED, b"own layer of public/app"], config=config,
                       annotations={"org.example.evil": IMG, "org.example.quote": SCRIPT,
                                    "org.opencontainers.image.url": JS_URL},
                       auth=ADMIN)
    push_image(reg, "public/other", "v1", [SHARED], note="other", auth=ADMIN)
    push_image(reg, "secret/hidden", "v1", [SHARED], note="hidden", auth=ADMIN)
    children = []
    for arch, variant in (("amd64", "v3"), ("arm64", "")):
        cfg = image_config(arch, note=arch, **({"variant": variant} if variant else {}))
        child = push_image(reg, app, None, [f"{arch} layer".encode()], config=cfg,
                           auth=ADMIN)
        platform = {"os": "linux", "architecture": arch, **({"variant": variant}
                                                            if variant else {})}
        children.append({**descriptor(OCI_MANIFEST, child.manifest), "platform": platform})
    index = put_manifest(reg, app, "multi", {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                             "manifests": children}, OCI_INDEX, auth=ADMIN)
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    empty = b"{}"
    for blob in (sbom, empty):
        push_blob(reg, app, blob, auth=ADMIN)
    referrer = put_manifest(reg, app, "sbom", {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM_TYPE,
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [descriptor(SBOM_TYPE, sbom)],
        "subject": descriptor(OCI_MANIFEST, image.manifest)}, auth=ADMIN)
    # One anonymous pull of v1, counted by the index within a flush or two.
    bearer = token(reg, None, f"repository:{app}:pull")
    assert requests.get(f"{reg.url}/v2/{app}/manifests/v1", timeout=30, headers={
        "Accept": OCI_MANIFEST, "Authorization": f"Bearer {bearer}"}).status_code == 200
    spec = make_spec("zlib-ng", "2.2.1")
    push_spack_oci(reg, "public/cache", spec, auth=ADMIN)
    yield {"reg": reg, "spec": spec, "app": app, "image": image.digest, "index": index,
           "children": [c["digest"] for c in children], "sbom": referrer}
    reg.stop()


def pwned(driver) -> bool:
    return driver.execute_script("return window.__pwned !== undefined")


def test_repository_page_lists_tags_builds_and_referrers(site, web):
    reg, app = site["reg"], site["app"]
    # Pulls and referrers are written to the index off the request path.
    wait_for(lambda: requests.get(f"{reg.url}/ui/r/{app}", timeout=30).text,
             lambda text: "application/spdx+json" in text and ">1<" in text)
    driver = web.open(f"{reg.url}/ui/r/{app}")
    rows = {r.get_attribute("data-tag"): r
            for r in driver.find_elements(By.CSS_SELECTOR, "tr.tag-row")}
    assert sorted(rows) == ["multi", "sbom", "v1"]
    v1 = rows["v1"]
    assert v1.find_element(By.CSS_SELECTOR, ".kind").text == "image"
    assert "linux/amd64" in v1.find_element(By.CSS_SELECTOR, ".builds").text
    assert v1.find_element(By.CSS_SELECTOR, ".pulls").text == "1"
    sbom_link = v1.find_element(By.CSS_SELECTOR, ".referrers a")
    assert sbom_link.text == SBOM_TYPE
    assert sbom_link.get_attribute("href").endswith(f"/ui/r/{app}/-/{site['sbom']}")
    multi = rows["multi"]
    assert multi.find_element(By.CSS_SELECTOR, ".kind").text == "index"
    builds = multi.find_element(By.CSS_SELECTOR, ".builds").text
    assert "linux/amd64/v3" in builds and "linux/arm64" in builds
    targets = [t.text for t in multi.find_elements(By.CSS_SELECTOR, ".target")]
    assert "x86_64_v3" in targets and any(t for t in targets if t != "x86_64_v3"), targets
    assert rows["sbom"].find_element(By.CSS_SELECTOR, ".kind").text.startswith("artifact")
    web.shot("repository")
    # Pages of one tag: the second holds the next tag in order, and links back.
    driver.get(f"{reg.url}/ui/r/{app}?n=1&last=multi")
    assert [r.get_attribute("data-tag") for r in
            driver.find_elements(By.CSS_SELECTOR, "tr.tag-row")] == ["sbom"]
    assert "last=sbom" in driver.find_element(By.ID, "next").get_attribute("href")
    assert not pwned(driver)
    web.size(390, 844)  # a phone: the table scrolls in its box, the page does not
    driver.get(f"{reg.url}/ui/r/{app}")
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")
    web.shot("repository-phone")


def test_manifest_page_escapes_and_shows_what_the_image_is(site, web):
    reg, app = site["reg"], site["app"]
    driver = web.open(f"{reg.url}/ui/r/{app}/-/tag/v1")  # 303 to the digest's page
    assert driver.current_url.endswith(f"/ui/r/{app}/-/{site['image']}")
    assert not pwned(driver)
    annotations = driver.find_element(By.ID, "annotations").text
    assert IMG in annotations and SCRIPT in annotations and JS_URL in annotations
    assert not driver.find_elements(By.CSS_SELECTOR, "main a[href^='javascript']")
    ours = "[src='/ui/static/copy.js']"
    assert not driver.find_elements(By.CSS_SELECTOR, f"main img, main script:not({ours})")
    labels = driver.find_element(By.ID, "labels").text
    assert IMG in labels and SCRIPT in labels
    config = driver.find_element(By.ID, "config").text
    assert "/bin/app --serve" in config and f"HOSTILE={SCRIPT}" in config
    # The shared layer names the other public repository, never the hidden one.
    also = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#layers .also a")]
    assert also == ["public/other"]
    assert "secret/hidden" not in driver.page_source
    needs = driver.find_element(By.ID, "needs").text
    assert "kubernetes.io/arch=amd64" in needs
    referrers = driver.find_element(By.ID, "referrers")
    assert SBOM_TYPE in referrers.text
    commands = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "[data-copyable]")]
    host = reg.url.split("://", 1)[1]
    assert commands == [f"podman pull {host}/{app}@{site['image']}",
                        f"apptainer pull docker://{host}/{app}@{site['image']}"]
    button = driver.find_element(By.CSS_SELECTOR, ".command button.copy")
    button.click()  # copy.js made the buttons (the page has no inline script)
    wait_for(lambda: button.text, lambda text: text == "Copied", deadline=5)
    web.shot("manifest-image")
    web.size(390, 844)
    driver.get(driver.current_url)
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")
    web.shot("manifest-image-phone")
    # The index: its children, each linked, with platform and target.
    driver.get(f"{reg.url}/ui/r/{app}/-/{site['index']}")
    links = [a.get_attribute("href") for a in
             driver.find_elements(By.CSS_SELECTOR, "#children td:first-child a")]
    assert [link.rsplit("/", 1)[1] for link in links] == site["children"]
    assert "x86_64_v3" in driver.find_element(By.ID, "children").text
    # The SBOM: an artifact that refers to the image.
    driver.get(f"{reg.url}/ui/r/{app}/-/{site['sbom']}")
    assert SBOM_TYPE in driver.find_element(By.ID, "kind").text
    assert driver.find_element(By.CSS_SELECTOR, "#subject a").get_attribute(
        "href").endswith(site["image"])
    assert not pwned(driver)


def test_hidden_repositories_and_bad_addresses_are_html_errors(site, web):
    reg, app = site["reg"], site["app"]
    digest = site["image"]
    cases = {
        "/ui/r/secret/hidden": 401,
        f"/ui/r/secret/hidden/-/{digest}": 401,
        "/ui/r/public/nothing-here": 404,
        f"/ui/r/{app}/-/sha256:{'0' * 64}": 404,
        f"/ui/r/{app}/-/not-a-digest": 400,
        f"/ui/r/{app}/-/sha256:%3Cscript%3E": 400,
        f"/ui/r/{app}/-/tag/{quote('<b>', safe='')}": 400,
        f"/ui/r/{app}/-/tag/nope": 404,
        f"/ui/r/{app}?last={quote('<x>', safe='')}": 400,
        f"/ui/r/{app}?n=lots": 400,
        "/ui/r/public/UPPER": 400,
        "/ui/r/public/a/-/b/c": 400,
    }
    for path, status in cases.items():
        r = requests.get(f"{reg.url}{path}", timeout=30, allow_redirects=False)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert r.headers["Content-Type"].startswith("text/html"), path
        assert "<script>" not in r.text and "<b>" not in r.text, path
    # A Host header that is not a host name is not echoed into the commands.
    r = requests.get(f"{reg.url}/ui/r/{app}/-/{digest}", timeout=30,
                     headers={"Host": 'evil.example"><script>x</script>'})
    assert r.status_code == 200, r.status_code
    assert "evil.example" not in r.text and "REGISTRY-HOST/public/app@" in r.text
    # A Spack build pushed over oci:// gets spack's commands too.
    spec = site["spec"]
    r = requests.get(f"{reg.url}/ui/r/public/cache/-/tag/{spec.tag}", timeout=30)
    host = reg.url.split("://", 1)[1]
    assert f"spack mirror add public-cache oci://{host}/public/cache" in r.text
    assert f"spack install --cache-only zlib-ng/{spec.hash}" in r.text
    driver = web.open(f"{reg.url}/ui/r/secret/hidden")
    assert driver.find_element(By.CSS_SELECTOR, "main h1").text.startswith("401")
    web.shot("hidden-401")
    # Logged in as someone who may pull it: the page, and the layer it shares is
    # listed as in it (the list follows the caller's rights, not a fixed filter).
    driver.get(driver.find_element(By.CSS_SELECTOR, "main a[href^='/ui/login?next=']")
               .get_attribute("href"))
    driver.find_element(By.ID, "name").send_keys(ADMIN[0])
    driver.find_element(By.ID, "password").send_keys(ADMIN[1])
    web.submit("login-submit")
    assert driver.find_element(By.ID, "repo-name").text == "secret/hidden"
    driver.get(f"{reg.url}/ui/r/{app}/-/{digest}")
    also = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#layers .also a")]
    assert also == ["public/other", "secret/hidden"]
