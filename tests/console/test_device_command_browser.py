"""A township operator closes a simulated meter's valve from its device page, in headless
Chromium, with the ingest worker, the delivery daemon and the meter on a private Mosquitto:
the command reaches done in the page and the valve then shows closed, without a reload; then
opens it again for the village's meters from the device list, through the confirmation.
A village cadre sees the same device page with no command form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from broadcast.command_store import last_valve
from ground.local import MosquittoServer, free_port
from ground.principal import Role
from ground.settings import parse_mqtt_url
from simulators.device import SimDevice
from simulators.fleet import SimulatedFleet
from tests.api.conftest import device_id
from tests.broadcast.test_delivery_mqtt import daemon, settings_for
from tests.browser import needs_chromium, outside, requested_urls, script_errors
from tests.console.conftest import UserMaker, browser_sign_in, screenshot, wait_for
from tests.ingest.conftest import ingest_settings, running_worker, wait_until
from village.api.serve import start
from village.api.settings import ApiSettings

pytestmark = needs_chromium
METER = device_id("water_meter", "east-1")


@pytest.fixture
def live_server(seeded: str, mosquitto: MosquittoServer, topic_prefix: str) -> Iterator[str]:
    """The API and console on the seeded database, linked to the private broker."""
    settings = settings_for(seeded, mosquitto, topic_prefix).model_copy(
        update={"development": True, "api": ApiSettings(port=free_port())})
    handle = start(settings)
    yield handle.url
    handle.stop()


def _valve(browser: Any) -> str | None:
    from selenium.webdriver.common.by import By

    shown = browser.find_elements(By.ID, "valve")
    return shown[0].get_attribute("data-open") if shown else None


def test_an_operator_closes_a_meters_valve_and_watches_it_done(
        live_server: str, browser: Any, make_user: UserMaker, seeded: str,
        mosquitto: MosquittoServer, topic_prefix: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    make_user("op1", Role.OPERATOR, "east")
    make_user("cadre1", Role.CADRE, "east", "east-1")
    meter = SimDevice(METER, "water_meter", village="east-1", township="east")
    with running_worker(ingest_settings(seeded, mosquitto.url, topic_prefix)), SimulatedFleet(
            parse_mqtt_url(mosquitto.url), topic_prefix, [meter], nb_iot_share=0,
            intervals_s={"water_meter": 1.0}, stagger=False), \
            daemon(settings_for(seeded, mosquitto, topic_prefix), 1):

        def reported() -> tuple[bool, Any] | None:
            with psycopg.connect(seeded) as conn:
                return last_valve(conn, METER)

        wait_until(reported, 20, "the meter reporting its valve")
        browser_sign_in(browser, live_server, "cadre1")
        browser.get(f"{live_server}/console/devices/{METER}")
        assert wait_for(lambda: _valve(browser), "the valve on the cadre's page") == "true"
        assert not browser.find_elements(By.CSS_SELECTOR, "form.command-form")
        screenshot(browser, "device-as-cadre")
        browser.delete_all_cookies()

        browser_sign_in(browser, live_server, "op1")
        browser.get(f"{live_server}/console/devices/{METER}")
        Select(browser.find_element(By.ID, "set_valve-open")).select_by_value("false")
        browser.find_element(By.ID, "set_valve-why").send_keys("爆管，关阀抢修")
        browser.find_element(By.ID, "set_valve-send").click()
        row = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR,
                                                     "#recent-commands tr[data-state]"),
                       "the command on the device page")
        browser.execute_script("window.notReloaded = true")
        assert "爆管，关阀抢修" in row[0].text and "关闭阀门" in row[0].text
        wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#recent-commands tr[data-state]")
                 .get_attribute("data-state") == "done", "the meter's answer: done", 30)
        wait_for(lambda: _valve(browser) == "false", "the valve shown closed", 30)
        assert browser.execute_script("return window.notReloaded") is True
        assert "关闭" in browser.find_element(By.ID, "valve").text
        screenshot(browser, "device-command")

        # The village's meters (one here) opened again from the device list, confirmed first.
        browser.get(f"{live_server}/console/devices?kind=water_meter&village=east-1")
        browser.find_element(By.CSS_SELECTOR, "#selection-commands summary").click()
        Select(browser.find_element(By.ID, "set_valve-open")).select_by_value("true")
        browser.find_element(By.ID, "set_valve-why").send_keys("抢修完毕，恢复供水")
        browser.find_element(By.ID, "set_valve-send").click()
        count = wait_for(lambda: browser.find_elements(By.ID, "device-count"), "the confirmation")
        assert count[0].text == "1"
        screenshot(browser, "command-confirm")
        browser.find_element(By.ID, "confirm-send").click()
        wait_for(lambda: browser.find_elements(By.ID, "count-done"), "the meter done", 30)
        assert browser.find_element(By.ID, "total").text == "1"
        screenshot(browser, "command")
        browser.get(f"{live_server}/console/commands")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#command-list tr[id^=listed-]")) == 2
        screenshot(browser, "commands")
    with psycopg.connect(seeded) as conn:
        audited = conn.execute("SELECT actor, detail->>'why' FROM api_audit"
                               " WHERE action = 'device.command' ORDER BY id").fetchall()
        answered = conn.execute("SELECT state FROM device_command_deliveries").fetchall()
    assert audited == [("user:op1", "爆管，关阀抢修"), ("user:op1", "抢修完毕，恢复供水")]
    assert answered == [("done",), ("done",)]
    assert script_errors(browser) == []
    assert outside(requested_urls(browser), live_server) == []
