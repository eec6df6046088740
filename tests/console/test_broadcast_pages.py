"""Broadcast pages over HTTP: no form below operator, an emergency needs a confirmation,
an uploaded audio file is served to the speakers, a bad target is refused."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.console.conftest import UserMaker, form_token, sign_in


def test_a_cadre_sees_broadcasts_but_has_no_form(console: TestClient,
                                                 make_user: UserMaker) -> None:
    make_user("cadre", Role.CADRE, "east", "east-1")
    sign_in(console, "cadre")
    page = console.get("/console/broadcasts")
    assert page.status_code == 200 and 'id="compose"' not in page.text
    token = form_token(page.text)
    refused = console.post("/console/broadcasts", data={
        "csrf_token": token, "text": "hi", "target": "village:east/east-1"})
    assert refused.status_code == 403


def test_an_emergency_is_sent_only_once_confirmed(console: TestClient, make_user: UserMaker,
                                                  database_url: str) -> None:
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    token = form_token(console.get("/console/broadcasts").text)
    fields = {"csrf_token": token, "text": "山洪预警", "priority": "emergency",
              "target": "township:east", "expires_minutes": "20"}
    asked = console.post("/console/broadcasts", data=fields)
    assert asked.status_code == 200 and 'id="confirm-send"' in asked.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM broadcasts").fetchone() == (0,)
    sent = console.post("/console/broadcasts", data={**fields, "confirmed": "yes"})
    assert sent.status_code == 303
    page = console.get(sent.headers["location"])
    assert 'id="delivery-table"' in page.text
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT priority, scope_label, created_by FROM broadcasts").fetchone()
    assert row == ("emergency", "township east", "user:op")


def test_outside_the_scope_is_refused(console: TestClient, make_user: UserMaker) -> None:
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    token = form_token(console.get("/console/broadcasts").text)
    refused = console.post("/console/broadcasts", data={
        "csrf_token": token, "text": "hi", "target": "township:west"})
    assert refused.status_code == 422 and 'id="error"' in refused.text


def test_an_uploaded_audio_file_is_broadcast_by_its_url(console: TestClient,
                                                        make_user: UserMaker,
                                                        database_url: str) -> None:
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    token = form_token(console.get("/console/broadcasts").text)
    sound = b"ID3" + bytes(range(256)) * 8
    sent = console.post("/console/broadcasts", data={
        "csrf_token": token, "target": "village:east/east-1"},
        files={"audio": ("notice.mp3", sound, "audio/mpeg")})
    assert sent.status_code == 303
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT audio_url FROM broadcasts").fetchone()
    assert row is not None and row[0].startswith("https://testserver/console/audio/")
    console.cookies.clear()  # speakers fetch it without signing in
    served = console.get(row[0].removeprefix("https://testserver"))
    assert served.status_code == 200 and served.content == sound
    assert served.headers["content-type"] == "audio/mpeg"
