"""Headless Chromium, driven through chromedriver, against the in-process suite.

Both come from Debian's packages (``chromium`` and ``chromium-driver``);
``.ci/run`` installs them. Every browser gets a fresh profile, and tests
save screenshots of the pages under ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Suite
from tests.pages import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ATLAS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ATLAS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WAIT = 30  # seconds a test waits for a page to reach an expected state

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",
]


class Browser:
    """One Chromium window pointed at the suite's gateway."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return url.removeprefix(self.base_url)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, name: str, value: str) -> None:
        field = self.find(f'[name="{name}"]')
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        self.find(css).click()

    def click_text(self, text: str) -> None:
        self.driver.find_element(
            By.XPATH, f'//*[self::a or self::button][normalize-space()="{text}"]'
        ).click()

    def text(self, css: str = "main") -> str:
        return str(self.find(css).text)

    def wait_until(self, condition: Callable[[], Any], message: str) -> Any:
        return WebDriverWait(self.driver, WAIT).until(lambda _: condition(), message)

    def wait_for(self, css: str) -> WebElement:
        """Return the element matching ``css`` once the page shows it."""
        # The element that the wait found, since a second query can run on
        # the next document when the page was still navigating.
        message = f"no element matches {css} on {self.path}"
        found = self.wait_until(lambda: self.find_all(css), message)
        return found[0]

    def run(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.open("/-/sign-in")
        self.fill("login", username)
        self.fill("password", password)
        self.click("main form button[type=submit]")
        self.wait_until(lambda: self.find_all("header .who"), "sign-in did not finish")

    def screenshot(self, name: str) -> Path:
        """Save the whole page, beyond the visible part, as ``name.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@pytest.fixture
def browser_factory(suite: Suite, tmp_path: Path) -> Iterator[Callable[..., Browser]]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "chromium and chromedriver are not installed; .ci/run installs them from Debian"
        )
    drivers: list[webdriver.Chrome] = []

    def make(
        width: int = 1280, height: int = 900, phone: bool = False, javascript: bool = True
    ) -> Browser:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}")
        options.add_argument(f"--window-size={width},{height}")
        if phone:
            # A desktop window cannot be narrower than about 500 pixels; emulate a phone.
            metrics = {"width": width, "height": height, "pixelRatio": 2, "mobile": True}
            options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
        if not javascript:
            options.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2}
            )
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        drivers.append(driver)
        return Browser(driver, suite.api_url)

    yield make
    for driver in drivers:
        driver.quit()


@pytest.fixture
def browser(browser_factory: Callable[..., Browser]) -> Browser:
    return browser_factory()
