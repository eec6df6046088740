"""Console fixtures: the API app (which serves the console) on the seeded database, users
per role and scope, and a signed-in HTTP client."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

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
