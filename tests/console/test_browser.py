"""The console in a real headless Chromium at phone width: sign in, see the scope's overview
and map, and nothing requested from anywhere but the console's own origin."""

from __future__ import annotations

from typing import Any

from ground.principal import Role
from tests.browser import needs_chromium, outside, requested_urls
from tests.console.conftest import (
    UserMaker,
    browser_sign_in,
    place_devices,
    screenshot,
    wait_for,
)

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
    screenshot(browser, "overview")
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
