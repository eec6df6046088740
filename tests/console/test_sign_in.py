"""Signing in over HTTP: the cookie's flags, CSRF on every form, wrong passwords refused,
sign-out, roles, and the headers that keep every console page to its own origin."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.console.conftest import UserMaker, form_token, sign_in
from village.console.pages.signin import cookies_refused_here
from village.console.sessions import find_session


def test_signing_in_sets_a_secure_http_only_same_site_cookie(console: TestClient,
                                                             make_user: UserMaker) -> None:
    make_user("admin1")
    page = console.get("/console/sign-in")
    response = console.post("/console/sign-in", data={
        "name": "admin1", "password": "correct horse battery",
        "form_token": form_token(page.text, "form_token"), "next": "/console/users"})
    assert response.status_code == 303 and response.headers["location"] == "/console/users"
    cookie = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith("village_session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert console.get("/console/users").status_code == 200


def test_a_wrong_password_or_a_forged_sign_in_is_refused(console: TestClient,
                                                         make_user: UserMaker) -> None:
    make_user("admin1")
    assert sign_in(console, "admin1", "not the password") == 401
    forged = console.post("/console/sign-in", data={
        "name": "admin1", "password": "correct horse battery", "form_token": "made-up"})
    assert forged.status_code == 403
    assert console.get("/console/users").status_code == 303  # still signed out


def test_pages_need_a_session_and_forms_need_the_csrf_token(console: TestClient,
                                                            make_user: UserMaker,
                                                            database_url: str) -> None:
    unsigned = console.get("/console/users")
    assert unsigned.status_code == 303
    assert unsigned.headers["location"].startswith("/console/sign-in?next=")
    make_user("admin1")
    assert sign_in(console, "admin1") == 303
    new_user = {"name": "li", "password": "long enough password", "role": "cadre",
                "township": "east", "village": "east-1"}
    assert console.post("/console/users", data=new_user).status_code == 403
    token = form_token(console.get("/console/users").text)
    assert console.post("/console/users", data={**new_user, "csrf_token": token}).status_code == 303
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT actor, action, target FROM api_audit"
                            " WHERE actor <> %s", ("system",)).fetchall()
    assert rows == [("user:admin1", "user.create", "user:li")]


def test_only_admins_manage_users(console: TestClient, make_user: UserMaker) -> None:
    make_user("op", Role.OPERATOR, "east")
    assert sign_in(console, "op") == 303
    assert console.get("/console/users").status_code == 403


def test_signing_out_ends_the_session(console: TestClient, make_user: UserMaker,
                                      database_url: str) -> None:
    make_user("admin1")
    sign_in(console, "admin1")
    session = console.cookies.get("village_session")
    assert session
    token = form_token(console.get("/console/users").text)
    assert console.post("/console/sign-out", data={"csrf_token": token}).status_code == 303
    with psycopg.connect(database_url) as conn:
        assert find_session(conn, session, datetime.now(UTC)) is None
    assert console.get("/console/users", cookies={"village_session": session}).status_code == 303


def test_console_pages_forbid_anything_from_outside_and_the_root_leads_there(
        console: TestClient) -> None:
    page = console.get("/console/sign-in", headers={"accept-encoding": "gzip"})
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "http" not in policy
    assert page.headers["content-encoding"] == "gzip"
    assert console.get("/").headers["location"] == "/console/"
    assert "content-security-policy" not in console.get("/healthz").headers


def test_the_overview_counts_what_the_scope_holds(console: TestClient,
                                                  make_user: UserMaker) -> None:
    make_user("cadre", Role.CADRE, "east", "east-1")
    sign_in(console, "cadre")
    page = console.get("/console/").text
    assert "east-1" in page and "west-1" not in page
    data = console.get("/console/map.json").json()
    assert data["places"] == [] and data["ids"] == []  # the seed gives no positions


def test_the_audit_page_shows_admins_everything_and_others_their_scope(
        console: TestClient, make_user: UserMaker) -> None:
    make_user("admin1")
    make_user("cadre", Role.CADRE, "west", "west-1")
    sign_in(console, "admin1")
    everything = console.get("/console/audit").text
    assert "user:cadre" in everything and "user.create" in everything
    filtered = console.get("/console/audit", params={"target": "admin1"}).text
    assert "user:admin1" in filtered and "user:cadre" not in filtered
    console.cookies.clear()
    sign_in(console, "cadre")
    own_scope = console.get("/console/audit").text
    assert "user:cadre" in own_scope and "user:admin1" not in own_scope


def test_browsers_keep_secure_cookies_over_http_only_on_loopback() -> None:
    assert not cookies_refused_here("https", "console.example.cn", secure_cookie=True)
    assert not cookies_refused_here("http", "localhost", secure_cookie=True)
    assert not cookies_refused_here("http", "127.0.0.1", secure_cookie=True)
    assert not cookies_refused_here("http", "::1", secure_cookie=True)
    assert cookies_refused_here("http", "192.168.1.20", secure_cookie=True)
    assert cookies_refused_here("http", "console.example.cn", secure_cookie=True)
    assert not cookies_refused_here("http", "192.168.1.20", secure_cookie=False)


def test_the_sign_in_page_says_when_plain_http_from_another_machine_cannot_sign_in(
        console: TestClient) -> None:
    from_afar = console.get("http://192.168.1.20/console/sign-in")
    assert 'id="https-needed"' in from_afar.text and "SECURE_COOKIE" in from_afar.text
    from_here = console.get("http://127.0.0.1/console/sign-in")
    assert 'id="https-needed"' not in from_here.text
