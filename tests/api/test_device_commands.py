"""Device commands through the API: role and scope, clear errors, audit, and the report."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import NOW, TokenMaker, device_id


def _valves(database_url: str, *villages: str) -> None:
    with psycopg.connect(database_url) as conn:
        for village in villages:
            conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                         " VALUES (%s, 'valve_open', %s, 1)",
                         (device_id("water_meter", village), NOW))
        # Written without ingest: merged into latest_values as an import would be.
        conn.execute("SELECT village_merge_latest()")


def test_an_operator_closes_the_valves_of_a_village_in_their_township(
        client: TestClient, auth: TokenMaker, seeded: str) -> None:
    _valves(seeded, "east-1", "west-1")
    body = {"op": "set_valve", "args": {"open": False}, "why": "爆管", "village": "east-1",
            "kind": "water_meter"}
    sent = client.post("/devices/commands", headers=auth(Role.OPERATOR, "east"), json=body)
    assert sent.status_code == 201, sent.text
    report = sent.json()
    meter = device_id("water_meter", "east-1")
    assert report["counts"] == {"queued": 1}
    assert [d["device_id"] for d in report["devices"]] == [meter]
    assert report["command"]["why"] == "爆管" and report["command"]["args"] == {"open": False}
    command_id = report["command"]["command_id"]
    with psycopg.connect(seeded) as conn:
        audited = conn.execute("SELECT actor_role, detail->>'why' FROM api_audit"
                               " WHERE action = 'device.command'").fetchall()
    assert audited == [("operator", "爆管")]
    shown = client.get(f"/devices/commands/{command_id}", headers=auth(Role.VIEWER, "east"))
    assert shown.status_code == 200 and shown.json()["counts"] == {"queued": 1}
    assert client.get(f"/devices/commands/{command_id}",
                      headers=auth(Role.VIEWER, "west")).status_code == 403
    detail = client.get(f"/devices/{meter}", headers=auth(Role.VIEWER))
    assert detail.json()["valve_open"] is True


def test_role_scope_and_bad_input_are_refused_and_nothing_is_sent(
        client: TestClient, auth: TokenMaker, seeded: str) -> None:
    _valves(seeded, "east-1", "west-1")
    meter = device_id("water_meter", "east-1")
    close = {"op": "set_valve", "args": {"open": False}, "why": "leak", "device_ids": [meter]}
    cadre = client.post("/devices/commands", headers=auth(Role.CADRE, "east", "east-1"),
                        json=close)
    assert cadre.status_code == 403 and "may not send set_valve" in cadre.json()["detail"]
    elsewhere = client.post("/devices/commands", headers=auth(Role.OPERATOR, "west"), json=close)
    assert elsewhere.status_code == 403
    cases = [
        ({**close, "op": "explode"}, "unknown op 'explode'"),
        ({**close, "args": {}}, "missing argument 'open'"),
        ({**close, "device_ids": [device_id("speaker", "east-1")]}, "takes no 'set_valve'"),
        ({**close, "device_ids": [device_id("water_meter", "east-2")]}, "has no valve"),
    ]
    for body, said in cases:
        answer = client.post("/devices/commands", headers=auth(), json=body)
        assert answer.status_code == 422 and said in answer.json()["detail"], answer.text
    with psycopg.connect(seeded) as conn:
        assert conn.execute("SELECT count(*) FROM device_commands").fetchone() == (0,)
