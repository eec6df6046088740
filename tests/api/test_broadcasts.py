"""Broadcasts through the API: the broadcast service authorizes, reports and cancels."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import TokenMaker, device_id


def _request(scope: dict[str, object]) -> dict[str, object]:
    return {"scope": scope, "text": "明天上午停水", "priority": "normal", "expires_in_s": 600}


def test_send_show_list_cancel(client: TestClient, auth: TokenMaker, seeded: str) -> None:
    operator = auth(Role.OPERATOR, "east")
    sent = client.post("/broadcasts", headers=operator,
                       json=_request({"kind": "township", "township": "east"}))
    assert sent.status_code == 201, sent.text
    report = sent.json()
    assert report["speakers"] == 2 and report["counts"] == {"queued": 2}
    shown = client.get(f"/broadcasts/{report['broadcast_id']}", headers=operator).json()
    assert shown["broadcast"]["text"] == "明天上午停水"
    assert {s["device_id"] for s in shown["report"]["unconfirmed"]} == {
        device_id("speaker", "east-1"), device_id("speaker", "east-2")}
    listed = client.get("/broadcasts", headers=auth(Role.VIEWER, "east", "east-1")).json()
    assert [b["broadcast_id"] for b in listed] == [report["broadcast_id"]]
    assert client.get("/broadcasts", headers=auth(Role.VIEWER, "west")).json() == []
    cancelled = client.post(f"/broadcasts/{report['broadcast_id']}/cancel", headers=operator)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    with psycopg.connect(seeded) as conn:
        actions = [a for (a,) in conn.execute(
            "SELECT action FROM api_audit WHERE action LIKE 'broadcast.%' ORDER BY id")]
    assert actions == ["broadcast.send", "broadcast.cancel"]


def test_a_township_operator_broadcasts_only_in_the_township(client: TestClient,
                                                            auth: TokenMaker) -> None:
    operator = auth(Role.OPERATOR, "east")
    assert client.post("/broadcasts", headers=operator,
                       json=_request({"kind": "township", "township": "west"})).status_code == 403
    assert client.post("/broadcasts", headers=operator,
                       json=_request({"kind": "county"})).status_code == 403
    assert client.post("/broadcasts", headers=auth(Role.CADRE, "east"),
                       json=_request({"kind": "township", "township": "east"})).status_code == 403
    # Below the county, a speaker that does not exist is refused as one outside the scope.
    unknown = client.post("/broadcasts", headers=operator,
                          json=_request({"kind": "speakers", "speakers": ["nope-01"]}))
    assert unknown.status_code == 403
    unknown = client.post("/broadcasts", headers=auth(Role.OPERATOR),
                          json=_request({"kind": "speakers", "speakers": ["nope-01"]}))
    assert unknown.status_code == 422 and unknown.json()["field"] == "body.scope"
    bad = client.post("/broadcasts", headers=operator,
                      json={"scope": {"kind": "county", "township": "x"}, "text": "hi"})
    assert bad.status_code == 422 and bad.json()["field"].startswith("body.scope")


def test_schedules(client: TestClient, auth: TokenMaker) -> None:
    operator = auth(Role.OPERATOR, "west")
    created = client.post("/broadcast-schedules", headers=operator, json={
        "name": "morning", "cron": "0 7 * * *",
        "request": _request({"kind": "village", "township": "west", "village": "west-1"})})
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]
    assert created.json()["next_fire_at"] is not None
    bad_cron = client.post("/broadcast-schedules", headers=operator, json={
        "name": "x", "cron": "every morning",
        "request": _request({"kind": "township", "township": "west"})})
    assert bad_cron.status_code == 422
    assert [s["schedule_id"] for s in client.get("/broadcast-schedules", headers=operator).json()] \
        == [schedule_id]
    assert client.get("/broadcast-schedules", headers=auth(Role.VIEWER, "east")).json() == []
    assert client.delete(f"/broadcast-schedules/{schedule_id}",
                         headers=auth(Role.VIEWER, "west")).status_code == 403
    assert client.delete(f"/broadcast-schedules/{schedule_id}", headers=operator).status_code == 204
    assert client.get("/broadcast-schedules", headers=operator).json() == []
