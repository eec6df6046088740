"""Alerts through the API and the phone page (without a browser; see test_phone_browser)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from ground.links import LinkGrant, sign_link_token
from ground.principal import Role
from tests.alerting.helpers import alert_view
from tests.api.conftest import NOW, TokenMaker, insert_alert
from village.api.phone_page import alert_page, sparkline
from village.settings import Settings, link_secret


def test_list_show_and_acknowledge(client: TestClient, auth: TokenMaker, seeded: str) -> None:
    east = insert_alert(seeded)
    west = insert_alert(seeded, "west-1", "west", severity="critical")
    admin = auth()
    assert [a["alert_id"] for a in client.get("/alerts", headers=admin).json()] == [west, east]
    assert [a["alert_id"] for a in client.get(
        "/alerts", params={"severity": "critical"}, headers=admin).json()] == [west]
    cadre = auth(Role.CADRE, "east", "east-1")
    assert [a["alert_id"] for a in client.get("/alerts", headers=cadre).json()] == [east]
    assert client.get(f"/alerts/{west}", headers=cadre).status_code == 403
    assert client.post(f"/alerts/{west}/ack", headers=cadre, json={}).status_code == 403
    acked = client.post(f"/alerts/{east}/ack", headers=cadre, json={"comment": "已派人查看"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["ack_comment"] == "已派人查看"
    detail = client.get(f"/alerts/{east}", headers=cadre).json()
    assert detail["alert"]["unit"] == "m³/h"
    assert [h["what"] for h in detail["history"]] == ["firing", "acknowledged", "acknowledged"]
    assert client.get("/alerts", params={"acknowledged": "false"}, headers=admin).json()[0][
        "alert_id"] == west
    with psycopg.connect(seeded) as conn:
        audited = conn.execute("SELECT actor FROM api_audit WHERE action = 'alert.acknowledge'"
                               ).fetchall()
    assert len(audited) == 1 and audited[0][0].startswith("token:")


def test_a_viewer_cannot_acknowledge(client: TestClient, auth: TokenMaker, seeded: str) -> None:
    alert_id = insert_alert(seeded)
    response = client.post(f"/alerts/{alert_id}/ack", headers=auth(Role.VIEWER), json={})
    assert response.status_code == 403
    assert client.get("/alerts/999999", headers=auth()).status_code == 404


def test_rules_check_and_list(client: TestClient, auth: TokenMaker) -> None:
    headers = auth(Role.VIEWER) | {"content-type": "application/yaml"}
    assert len(client.get("/rules", headers=headers).json()) > 5
    bad = client.post("/rules/check", headers=headers, content=b"rules: [{name: x}]")
    assert bad.status_code == 422 and "x" in bad.json()["detail"]
    assert client.post("/rules/check", headers=headers, content=b"not: yaml: [").status_code == 422


def _link(settings: Settings, alert_id: int, expires: datetime) -> str:
    return "/a/" + sign_link_token(link_secret(settings), LinkGrant(alert_id, "p-7", expires))


def test_phone_page_shows_and_acknowledges(client: TestClient, settings: Settings,
                                           seeded: str) -> None:
    alert_id = insert_alert(seeded)
    link = _link(settings, alert_id, datetime.now(UTC) + timedelta(hours=1))
    page = client.get(link)
    assert page.status_code == 200
    assert "夜间流量偏高" in page.text and "east-1" in page.text and "<svg" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    posted = client.post(link, data={"comment": "马上去"}, follow_redirects=False)
    assert posted.status_code == 303
    with psycopg.connect(seeded) as conn:
        row = conn.execute("SELECT acknowledged_by, ack_comment FROM alerts WHERE id = %s",
                           (alert_id,)).fetchone()
    assert row == ("person:p-7", "马上去")
    assert 'id="acknowledged"' in client.get(link).text


@pytest.mark.parametrize("mangle, status", [
    (lambda link: link[:-2] + ("AA" if not link.endswith("AA") else "BB"), 403),
    (lambda link: link.replace("/a/", "/a/x"), 403),
])
def test_altered_links_are_refused(client: TestClient, settings: Settings, seeded: str,
                                   mangle: Callable[[str], str], status: int) -> None:
    link = _link(settings, insert_alert(seeded), datetime.now(UTC) + timedelta(hours=1))
    for method in (client.get, client.post):
        response = method(mangle(link))
        assert response.status_code == status
        assert "链接无效" in response.text


def test_expired_links_are_gone(client: TestClient, settings: Settings, seeded: str) -> None:
    link = _link(settings, insert_alert(seeded), datetime.now(UTC) - timedelta(seconds=1))
    response = client.post(link, data={"comment": "x"})
    assert response.status_code == 410 and "链接已过期" in response.text
    with psycopg.connect(seeded) as conn:
        assert conn.execute("SELECT count(*) FROM alert_acks").fetchone() == (0,)


def test_page_escapes_what_it_shows() -> None:
    view = alert_view(severity="major", summary="<script>alert(1)</script>", device_id="m-1",
                      kind="water_meter", township="t", village="v", metric="flow_m3h",
                      unit="m³/h", value=1.0, threshold=0.5, last_value=1.0, started_at=NOW)
    html = alert_page(view, [], "/a/x")
    assert "<script>alert" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("values, threshold, expected_points", [
    ([1.0], None, 0),
    ([1.0, 2.0, 3.0], None, 3),
    ([5.0, 5.0], 7.0, 2),
])
def test_sparkline(values: list[float], threshold: float | None, expected_points: int) -> None:
    points = [(NOW + timedelta(minutes=15 * i), v) for i, v in enumerate(values)]
    svg = sparkline(points, threshold)
    if expected_points == 0:
        assert svg == ""
        return
    polyline = svg.split('points="')[1].split('"')[0].split()
    assert len(polyline) == expected_points
    assert ("<line" in svg) == (threshold is not None)


def test_silences(client: TestClient, auth: TokenMaker) -> None:
    operator = auth(Role.OPERATOR, "east")
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    created = client.post("/silences", headers=operator, json={
        "matchers": {"township": "east", "village": "east-1", "rule": "night_flow"},
        "ends_at": ends, "comment": "换管道"})
    assert created.status_code == 201, created.text
    silence_id = created.json()["id"]
    outside = client.post("/silences", headers=operator, json={
        "matchers": {"township": "west"}, "ends_at": ends})
    assert outside.status_code == 403
    unknown = client.post("/silences", headers=operator, json={
        "matchers": {"township": "east", "colour": "red"}, "ends_at": ends})
    assert unknown.status_code == 422 and unknown.json()["field"] == "body.matchers"
    too_long = client.post("/silences", headers=operator, json={
        "matchers": {"township": "east"},
        "ends_at": (datetime.now(UTC) + timedelta(days=60)).isoformat()})
    assert too_long.status_code == 422
    assert [s["id"] for s in client.get("/silences", headers=auth(Role.VIEWER, "east", "east-1")
                                        ).json()] == [silence_id]
    assert client.get("/silences", headers=auth(Role.VIEWER, "west")).json() == []
    assert client.delete(f"/silences/{silence_id}", headers=auth(Role.CADRE, "east")
                         ).status_code == 403
    assert client.delete(f"/silences/{silence_id}", headers=operator).status_code == 204
    assert client.get("/silences", headers=operator).json() == []


def test_a_phone_comment_with_a_nul_is_refused_naming_the_field(
    client: TestClient, settings: Settings, seeded: str
) -> None:
    link = _link(settings, insert_alert(seeded), datetime.now(UTC) + timedelta(hours=1))
    response = client.post(link, data={"comment": "马上\x00去"}, follow_redirects=False)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "body.comment"
    with psycopg.connect(seeded) as conn:
        assert conn.execute("SELECT count(*) FROM alert_acks").fetchone() == (0,)
