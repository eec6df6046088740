"""Console fixtures: the API app (which serves the console) on the seeded database, users
per role and scope, and a signed-in HTTP client."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ground.principal import SYSTEM, Place, Role
from tests.api.conftest import seeded, server, settings  # noqa: F401 (fixtures)
from village.api.app import create_app
from village.console.accounts import create_user
from village.settings import Settings

PASSWORD = "correct horse battery"
UserMaker = Callable[..., str]


@pytest.fixture
def make_user(database_url: str) -> UserMaker:
    """Create a console user with a role and scope; returns their name."""

    def make(name: str, role: Role = Role.ADMIN, township: str | None = None,
             village: str | None = None) -> str:
        with psycopg.connect(database_url) as conn:
            create_user(conn, SYSTEM, name, PASSWORD, role, Place(township, village))
        return name

    return make


@pytest.fixture
def console(settings: Settings, seeded: str) -> Iterator[TestClient]:  # noqa: F811
    """A client of the console over https (the session cookie is Secure)."""
    with TestClient(create_app(settings), base_url="https://testserver",
                    follow_redirects=False) as test_client:
        yield test_client


def form_token(html: str, field: str = "csrf_token") -> str:
    """The hidden token a page's form carries."""
    found = re.search(rf'name="{field}" value="([^"]+)"', html)
    assert found, f"no {field} in the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    """Post the sign-in form as a browser would; the response status."""
    page = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={
        "name": name, "password": password, "form_token": form_token(page.text, "form_token"),
        "next": "/console/users"})
    return response.status_code


SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots" / "console"


def screenshot(driver: Any, name: str) -> None:
    """Keep a picture of the page for people to look at (build/screenshots/console)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def wait_for(check: Callable[[], Any], what: str, seconds: float = 15) -> Any:
    """Poll until `check()` is truthy; fail naming `what` after `seconds`. An element the
    page replaced meanwhile (htmx refreshes) counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except StaleElementReferenceException:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def browser_sign_in(driver: Any, base: str, name: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would, and wait for the answer."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/console/sign-in")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    # The click returns before the answer arrives: wait for the page it leads to.
    wait_for(lambda: driver.find_elements(By.ID, "who")
             or driver.find_elements(By.ID, "sign-in-error"), "the answer to signing in")


def place_devices(database_url: str) -> None:
    """Give the seeded devices positions: each village its own corner of the map."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE devices SET latitude = 30 + (CASE village WHEN 'east-1' THEN 0.00"
            " WHEN 'east-2' THEN 0.02 WHEN 'west-1' THEN 0.04 ELSE 0.06 END)"
            " + 0.001 * (ascii(kind)), longitude = 120 + 0.001 * length(kind)")
