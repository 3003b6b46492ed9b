"""The dashboard in a real browser: Debian's chromium, headless, driven through its
chromedriver by Selenium (both installed by tests/run.sh; Selenium is told where they
are, so it never downloads a driver).

`browser` is one Chromium for the session; `web` hands a test that browser with no
cookies left from another test, and `shot(name)` saves a screenshot under the test's
temporary directory (pages are looked at, not only parsed)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import RunningRegistry, launch, wait_for
from pushing import image_config, push_image, push_spack_oci
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from loadtest.spackgen import make_spec
from registry.auth.passwords import hash_password


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"none of {names} is installed: run the tests with tests/run.sh")


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                "--disable-background-networking"):
        options.add_argument(arg)
    if os.geteuid() == 0:  # Chromium refuses to sandbox as root (CI runs as root)
        options.add_argument("--no-sandbox")
    driver = webdriver.Chrome(options=options,
                              service=Service(_binary("chromedriver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class Web:
    """The session's browser for one test, and where its screenshots go."""

    def __init__(self, driver: webdriver.Chrome, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def open(self, url: str) -> webdriver.Chrome:
        self.driver.get(url)
        return self.driver

    def shot(self, name: str, docs: str | None = None) -> Path:
        """A screenshot under the test's temporary directory; one named `docs` is also
        copied to $REGISTRY_UI_SHOTS/<docs>.png when that is set (the docs' pictures:
        `REGISTRY_UI_SHOTS=docs/img python -m pytest tests/ui`)."""
        path = self.shots / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        target = os.environ.get("REGISTRY_UI_SHOTS")
        if docs and target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(target) / f"{docs}.png")
        return path

    def size(self, width: int, height: int) -> None:
        self.driver.set_window_size(width, height)

    def submit(self, element_id: str) -> None:
        """Click a form's button (or a link) and wait for the page it leads to: a click
        returns before the browser has navigated."""
        self.follow(self.driver.find_element(By.ID, element_id))

    def follow(self, element: Any) -> None:
        """Click `element` (a link, a button) and wait for the page it leads to."""
        self.driver.execute_script("window.__before_submit = true")
        element.click()
        WebDriverWait(self.driver, 30).until(lambda d: d.execute_script(
            "return window.__before_submit === undefined"
            " && document.readyState === 'complete'"))


@pytest.fixture
def web(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Web]:
    browser.delete_all_cookies()
    browser.set_window_size(1280, 900)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    yield Web(browser, shots)
    browser.delete_all_cookies()


Shot = Callable[[str], Path]


# -- a registry with token auth, shared by the login and search tests ------------------

PASSWORDS = {"writer": "writer-pw-1", "alice": "alice-pw-2"}
WRITER = ("writer", PASSWORDS["writer"])
# Anonymous callers may pull pub/*; alice team/* too; the writer everything.
RULES = ["* user:writer pull,push,delete,admin", "pub/* anonymous pull",
         "pub/* user:alice pull", "team/* user:alice pull"]
HOSTILE = ['<img src=x onerror=window.__pwned=1>', '"><script>window.__pwned=1</script>']


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A token-auth registry holding public images (with hostile annotations and
    labels), a Spack cache, and team/* content anonymous callers may not see; every
    push indexed before it is handed out."""
    users = ", ".join(json.dumps(f"{name}:{hash_password(pw)}")
                      for name, pw in PASSWORDS.items())
    rules = ", ".join(json.dumps(r) for r in RULES)
    reg = launch(tmp_path_factory.mktemp("ui-auth"), config=(
        f'[auth]\nmode = "token"\naudit_log = ""\nlogin_attempts = 3\n'
        f'users = [{users}]\nrules = [{rules}]\n'))
    try:
        hostile = {"org.opencontainers.image.description": HOSTILE[0],
                   "org.opencontainers.image.title": HOSTILE[1]}
        push_image(reg, "pub/hello", "v1", [b"hello layer"], auth=WRITER,
                   annotations=hostile, config=image_config(
                       "amd64", config={"Labels": {"evil": HOSTILE[1], "team": "hpc"}}))
        push_image(reg, "pub/tool", "2.0", [b"tool layer"], auth=WRITER,
                   config=image_config("arm64"))
        push_image(reg, "team/secret", "v1", [b"secret layer"], auth=WRITER,
                   annotations={"org.opencontainers.image.title": "hello secret"})
        push_spack_oci(reg, "pub/cache", make_spec("zlib", "1.3.1", target="zen2"),
                       auth=WRITER)
        push_spack_oci(reg, "team/cache", make_spec("zlib", "1.2.13", target="zen3"),
                       auth=WRITER)

        def indexed() -> int:
            r = requests.get(f"{reg.url}/api/v1/search", auth=WRITER, timeout=30)
            return len(r.json()["results"]) if r.status_code == 200 else -1

        assert wait_for(indexed, lambda n: n >= 5) >= 5
        yield reg
    finally:
        reg.stop()
