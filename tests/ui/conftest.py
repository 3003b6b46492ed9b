"""The dashboard in a real browser: Debian's chromium, headless, driven through its
chromedriver by Selenium (both installed by tests/run.sh; Selenium is told where they
are, so it never downloads a driver).

`browser` is one Chromium for the session; `web` hands a test that browser with no
cookies left from another test, and `shot(name)` saves a screenshot under the test's
temporary directory (pages are looked at, not only parsed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service


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

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path

    def size(self, width: int, height: int) -> None:
        self.driver.set_window_size(width, height)


@pytest.fixture
def web(browser: webdriver.Chrome, tmp_path: Path) -> Iterator[Web]:
    browser.delete_all_cookies()
    browser.set_window_size(1280, 900)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    yield Web(browser, shots)
    browser.delete_all_cookies()


Shot = Callable[[str], Path]
