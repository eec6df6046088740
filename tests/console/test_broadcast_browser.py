"""A township operator broadcasts to a village from the console, in headless Chromium, with
the delivery daemon and simulated speakers on a private Mosquitto: every speaker reaches
confirmed in the page; an offline one waits, then confirms when it comes back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ground.local import MosquittoServer, free_port
from ground.principal import Role
from simulators.commands import OFFLINE
from tests.api.conftest import device_id
from tests.broadcast.test_delivery_mqtt import daemon, fleet_of, settings_for
from tests.browser import needs_chromium, outside, requested_urls
from tests.console.conftest import UserMaker, browser_sign_in, screenshot, wait_for
from village.api.serve import start
from village.api.settings import ApiSettings

pytestmark = needs_chromium
SPEAKERS = [device_id("speaker", "east-1", n) for n in (1, 2, 3)]


@pytest.fixture
def live_server(seeded: str, mosquitto: MosquittoServer, topic_prefix: str) -> Iterator[str]:
    """The API and console on the seeded database, linked to the private broker."""
    with psycopg.connect(seeded) as conn:
        for speaker in SPEAKERS[1:]:
            conn.execute("INSERT INTO devices (device_id, kind, township, village)"
                         " VALUES (%s, 'speaker', 'east', 'east-1')", (speaker,))
    settings = settings_for(seeded, mosquitto, topic_prefix).model_copy(
        update={"development": True, "api": ApiSettings(port=free_port())})
    handle = start(settings)
    yield handle.url
    handle.stop()


def _state(browser: Any, speaker: str) -> str | None:
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.ID, f"delivery-{speaker}")
    return rows[0].get_attribute("data-state") if rows else None


def test_a_township_operator_broadcasts_to_a_village_and_watches_it_confirm(
        live_server: str, browser: Any, make_user: UserMaker, seeded: str,
        mosquitto: MosquittoServer, topic_prefix: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    make_user("op1", Role.OPERATOR, "east")
    rows = [(speaker, "east", "east-1") for speaker in SPEAKERS]
    away = SPEAKERS[2]
    with fleet_of(rows, mosquitto, topic_prefix, {away: OFFLINE}) as fleet, \
            daemon(settings_for(seeded, mosquitto, topic_prefix), len(SPEAKERS)):
        browser_sign_in(browser, live_server, "op1")
        browser.get(f"{live_server}/console/broadcasts")
        picker = Select(browser.find_element(By.ID, "target"))
        assert "township:west" not in [o.get_attribute("value") for o in picker.options]
        browser.find_element(By.ID, "text").send_keys("今晚八点村委会开会")
        picker.select_by_value("village:east/east-1")
        browser.find_element(By.ID, "send").click()
        wait_for(lambda: all(_state(browser, s) == "done" for s in SPEAKERS[:2]),
                 "the online speakers confirmed in the page", 30)
        wait_for(lambda: _state(browser, away) == "offline", "the offline speaker waiting")
        screenshot(browser, "broadcast")
        fleet.bring_online([away])
        wait_for(lambda: _state(browser, away) == "done", "the returning speaker confirmed", 30)
        wait_for(lambda: browser.find_element(By.ID, "confirmed").text == "3", "3 confirmed")
    assert outside(requested_urls(browser), live_server) == []
