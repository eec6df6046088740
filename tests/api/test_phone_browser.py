"""The phone page in a real headless Chromium: open the link, acknowledge, see it stored;
an expired or altered link is refused; nothing is loaded from anywhere but the API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from ground.links import LinkGrant, sign_link_token
from tests.api.conftest import insert_alert
from tests.browser import needs_chromium, outside, requested_urls
from village.settings import Settings, link_secret

pytestmark = needs_chromium


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
    assert outside(requested_urls(driver), server) == []


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
