"""The console in a real headless Chromium at phone width: sign in, the scope's overview and
map, an alert from the real pipeline acknowledged, a bad CSV refused, and nothing requested
from anywhere but the console's own origin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from ground.local import MosquittoServer
from ground.principal import Role
from ground.settings import parse_mqtt_url
from simulators.device import SimDevice
from simulators.fleet import SimulatedFleet
from tests.alerting.fixtures import two_level_routing
from tests.alerting.receivers import http_receiver
from tests.alerting.test_end_to_end import (
    CONTAMINATION_RULES,
    alerting_settings,
    running_alerting,
)
from tests.api.conftest import device_id, insert_alert
from tests.browser import needs_chromium, outside, requested_urls, script_errors
from tests.console.conftest import (
    UserMaker,
    browser_sign_in,
    place_devices,
    screenshot,
    wait_for,
)
from tests.ingest.conftest import ingest_settings, running_worker

pytestmark = needs_chromium


def test_sign_in_refuses_a_wrong_password_then_shows_the_overview(
        server: str, browser: Any, make_user: UserMaker, seeded: str) -> None:
    from selenium.webdriver.common.by import By

    make_user("admin1")
    place_devices(seeded)
    browser_sign_in(browser, server, "admin1", "not the password")
    error = wait_for(lambda: browser.find_elements(By.ID, "sign-in-error"), "a refusal")
    assert "用户名或密码错误" in error[0].text
    screenshot(browser, "sign-in-refused")
    browser_sign_in(browser, server, "admin1")
    wait_for(lambda: browser.find_elements(By.ID, "by-kind"), "the overview")
    markers = wait_for(lambda: browser.find_element(By.ID, "map").get_attribute("data-markers"),
                       "the map's markers")
    assert markers == "12"
    assert script_errors(browser) == []  # the map ran within the Content-Security-Policy
    screenshot(browser, "overview")
    browser.get(f"{server}/console/audit")
    assert "user.create" in browser.find_element(By.ID, "audit").text
    screenshot(browser, "audit")
    browser.find_element(By.ID, "lang").click()
    assert wait_for(lambda: "Audit" in browser.find_element(By.TAG_NAME, "h1").text, "English")
    screenshot(browser, "audit-english")
    assert outside(requested_urls(browser), server) == []


def test_a_village_cadre_sees_only_their_village(server: str, browser: Any,
                                                 make_user: UserMaker, seeded: str) -> None:
    from selenium.webdriver.common.by import By

    make_user("cadre1", Role.CADRE, "east", "east-1")
    place_devices(seeded)
    browser_sign_in(browser, server, "cadre1")
    markers = wait_for(lambda: browser.find_element(By.ID, "map").get_attribute("data-markers"),
                       "the map's markers")
    assert markers == "3"
    kinds = browser.find_element(By.ID, "by-kind").text
    assert "water_meter" in kinds
    assert "east/east-1" in browser.find_element(By.ID, "who").text
    browser.get(f"{server}/console/devices")
    listed = browser.find_element(By.ID, "device-list").text
    assert "east-1" in listed and "west-1" not in listed and "east-2" not in listed
    browser.get(f"{server}/console/broadcasts")
    assert browser.find_elements(By.ID, "broadcast-list")
    assert not browser.find_elements(By.ID, "compose")  # a cadre has no broadcast form
    screenshot(browser, "broadcasts-as-cadre")


def test_a_contamination_alert_appears_without_reload_and_is_acknowledged_with_a_comment(
        server: str, browser: Any, make_user: UserMaker, seeded: str, tmp_path: Path,
        mosquitto: MosquittoServer, topic_prefix: str) -> None:
    """The alert comes from the real pipeline: a simulated probe on Mosquitto, the ingest
    worker, the alerting service with a turbidity rule."""
    from selenium.webdriver.common.by import By

    make_user("cadre1", Role.CADRE, "east", "east-1")
    probe = SimDevice(device_id("water_quality", "east-1"), "water_quality", village="east-1",
                      township="east")
    hidden = insert_alert(seeded, village="west-1", township="west")
    base = ingest_settings(seeded, mosquitto.url, topic_prefix)
    with http_receiver() as (url, _):
        routing = two_level_routing([{"name": "hook", "type": "webhook",
                                      "options": {"url": url}}], ["hook"], ["hook"])
        pipeline = alerting_settings(base, tmp_path, routing, CONTAMINATION_RULES)
        with running_worker(base), running_alerting(pipeline), SimulatedFleet(
                parse_mqtt_url(mosquitto.url), topic_prefix, [probe],
                intervals_s={"water_quality": 0.5}, stagger=False) as fleet:
            browser_sign_in(browser, server, "cadre1")
            browser.get(f"{server}/console/alerts")
            browser.execute_script("window.notReloaded = true")
            fleet.start_fault([probe.device_id], "contamination", ramp_s=0)
            row = wait_for(lambda: [r for r in browser.find_elements(
                By.CSS_SELECTOR, "#alert-list tr[id^=alert-]") if "浊度" in r.text],
                "the contamination alert on the page", 40)
    assert browser.execute_script("return window.notReloaded") is True
    assert not browser.find_elements(By.ID, f"alert-{hidden}")  # another village's
    alert_id = int(str(row[0].get_attribute("id")).removeprefix("alert-"))
    screenshot(browser, "alerts")
    row[0].find_element(By.TAG_NAME, "a").click()
    wait_for(lambda: browser.find_elements(By.ID, "comment"), "the alert page")
    points = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "[data-chart]")
                      .get_attribute("data-points"), "the readings chart")
    assert int(points) > 0
    assert not browser.find_elements(By.ID, "silence-form")  # a cadre may not silence
    browser.find_element(By.ID, "comment").send_keys("已到现场，阀门已关")
    browser.find_element(By.ID, "ack").click()
    shown = wait_for(lambda: browser.find_elements(By.ID, "acknowledged"), "the acknowledgement")
    assert "已到现场，阀门已关" in shown[0].text and "user:cadre1" in shown[0].text
    screenshot(browser, "alert")
    with psycopg.connect(seeded) as conn:
        stored = conn.execute("SELECT rule, acknowledged_by, ack_comment FROM alerts"
                              " WHERE id = %s", (alert_id,)).fetchone()
        audited = conn.execute("SELECT actor FROM api_audit WHERE action = 'alert.acknowledge'"
                               ).fetchall()
    assert stored == ("wq-turbidity-critical", "user:cadre1", "已到现场，阀门已关")
    assert audited == [("user:cadre1",)]
    assert outside(requested_urls(browser), server) == []


def test_a_csv_with_one_bad_row_shows_its_error_and_imports_nothing(
        server: str, browser: Any, make_user: UserMaker, seeded: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    make_user("op1", Role.OPERATOR, "east")
    csv_file = tmp_path / "meters.csv"
    csv_file.write_text("device_id,kind,township,village\n"
                        "wm-new-0001,water_meter,east,east-1\n"
                        "wm-new-0002,water_meter,east,east-1\n"
                        "wm-new-0003,toaster,east,east-1\n", encoding="utf-8")
    browser_sign_in(browser, server, "op1")
    browser.get(f"{server}/console/devices?q=watermeter")
    wait_for(lambda: browser.find_elements(By.ID, "device-list"), "the device list")
    screenshot(browser, "devices")
    browser.find_element(By.ID, "import-link").click()
    browser.find_element(By.ID, "file").send_keys(str(csv_file))
    browser.find_element(By.ID, "upload").click()
    rows = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#bad-rows tbody tr"),
                    "the bad rows")
    assert len(rows) == 1 and "toaster" in rows[0].text and rows[0].text.startswith("4")
    screenshot(browser, "device-import-refused")
    with psycopg.connect(seeded) as conn:
        assert conn.execute("SELECT count(*) FROM devices WHERE device_id LIKE 'wm-new%'"
                            ).fetchone() == (0,)
    browser.get(f"{server}/console/devices/{device_id('water_meter', 'east-1')}"
                "?metric=total_m3&span=7d")
    points = wait_for(lambda: browser.find_element(By.ID, "device-chart")
                      .get_attribute("data-points"), "the device's chart")
    assert int(points) == 72  # the seed's hourly readings of three days
    # The axis spans the week asked for, not only the three days that hold readings.
    span = browser.find_element(By.ID, "device-chart").get_attribute("data-span")
    assert float(span) == 7 * 86400
    assert script_errors(browser) == []
    screenshot(browser, "device")
    assert outside(requested_urls(browser), server) == []
