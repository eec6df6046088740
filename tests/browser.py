"""Headless Chromium (Debian's chromium and chromium-driver) for the browser tests, and what
it requested over the network."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
needs_chromium = pytest.mark.skipif(not Path(CHROMEDRIVER).exists(),
                                    reason="needs Debian's chromium and chromium-driver")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium at phone width with a fresh profile, logging every network request."""
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="village-chromium-")
    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=412,915",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page asked the network for since the last call."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def outside(urls: list[str], origin: str) -> list[str]:
    """The network requests (http, https, ws) that went anywhere but `origin`."""
    # Chromium's own chrome:// and data: URLs are not the network.
    return [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")
            and not u.startswith(origin)]


def script_errors(driver: Any) -> list[str]:
    """Content-Security-Policy refusals and uncaught script errors the page's console
    reported since the last call (an HTTP error status of a page is not one)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]]
