"""The phone page in a real headless Chromium: open the link, acknowledge, see it stored;
an expired or altered link is refused; nothing is loaded from anywhere but the API."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from selenium import webdriver

from ground.links import LinkGrant, sign_link_token
from tests.api.conftest import insert_alert
from village.settings import Settings, link_secret

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not Path(CHROMEDRIVER).exists(),
                                reason="needs Debian's chromium and chromium-driver")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium with a fresh profile, logging every network request."""
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="village-chromium-")
    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=412,915",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _requested_urls(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _link(settings: Settings, base: str, alert_id: int, expires: datetime) -> str:
    token = sign_link_token(link_secret(settings), LinkGrant(alert_id, "grid-worker-3", expires))
    return f"{base}/a/{token}"


def test_open_acknowledge_and_see_it_stored(server: str, browser: Any, settings: Settings,
                                            seeded: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    alert_id = insert_alert(seeded)
    link = _link(settings, server, alert_id, datetime.now(UTC) + timedelta(hours=2))
    driver = browser
    driver.get(link)
    assert "夜间流量偏高" in driver.find_element(By.TAG_NAME, "h1").text
    assert driver.find_elements(By.CSS_SELECTOR, "svg polyline")
    driver.find_element(By.ID, "comment").send_keys("已到现场，阀门已关")
    driver.find_element(By.ID, "ack").click()
    deadline = time.monotonic() + 10
    while not driver.find_elements(By.ID, "acknowledged"):
        assert time.monotonic() < deadline, "the page never showed the acknowledgement"
        time.sleep(0.1)
    driver.save_screenshot(str(tmp_path / "acknowledged.png"))
    with psycopg.connect(seeded) as conn:
        row = conn.execute("SELECT acknowledged_by, ack_comment, acknowledged_at IS NOT NULL"
                           " FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row == ("person:grid-worker-3", "已到现场，阀门已关", True)
    # Chromium's own chrome:// pages are not the network; every http(s) request is ours.
    outside = [u for u in _requested_urls(driver)
               if u.split(":", 1)[0] in ("http", "https", "ws", "wss") and not u.startswith(server)]
    assert outside == [], outside


def test_expired_and_altered_links_are_refused(server: str, browser: Any, settings: Settings,
                                               seeded: str) -> None:
    from selenium.webdriver.common.by import By

    alert_id = insert_alert(seeded)
    driver = browser
    expired = _link(settings, server, alert_id, datetime.now(UTC) - timedelta(minutes=1))
    driver.get(expired)
    assert "链接已过期" in driver.find_element(By.TAG_NAME, "h1").text
    good = _link(settings, server, alert_id, datetime.now(UTC) + timedelta(hours=1))
    signature = good.rsplit(".", 1)[1]
    # Point the token at another alert, keeping the old signature.
    other = _link(settings, server, alert_id + 1, datetime.now(UTC) + timedelta(hours=1))
    altered = other.rsplit(".", 1)[0] + "." + signature
    driver.get(altered)
    assert "链接无效" in driver.find_element(By.TAG_NAME, "h1").text
    assert not driver.find_elements(By.ID, "ack")
    with psycopg.connect(seeded) as conn:
        assert conn.execute("SELECT count(*) FROM alert_acks").fetchone() == (0,)
