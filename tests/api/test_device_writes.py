"""Registry changes through the API: create, update, retire, import; authorized and audited."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import TokenMaker, device_id

CSV_HEADERS = {"content-type": "text/csv"}


def _audit(database_url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(database_url) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT actor_role, action, target FROM api_audit WHERE action LIKE 'device.%'"
            " ORDER BY id")]


def test_create_update_retire(client: TestClient, auth: TokenMaker, seeded: str) -> None:
    headers = auth(Role.OPERATOR, "east")
    created = client.post("/devices", headers=headers, json={
        "device_id": "meter-new-01", "kind": "water_meter", "township": "east",
        "village": "east-1", "latitude": 30.5, "tags": {"household": "王家"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["device"]["tags"] == {"household": "王家"} and len(body["secret"]) >= 16
    with psycopg.connect(seeded) as conn:
        stored = conn.execute("SELECT secret_hash FROM devices WHERE device_id = 'meter-new-01'"
                              ).fetchone()
    assert stored is not None and body["secret"] not in stored[0]

    again = client.post("/devices", headers=headers, json={
        "device_id": "meter-new-01", "kind": "water_meter", "township": "east", "village": "east-1"})
    assert again.status_code == 409 and again.json()["field"] == "body.device_id"

    updated = client.patch("/devices/meter-new-01", headers=headers,
                           json={"village": "east-2", "name": "新表"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["village"], updated.json()["name"]) == ("east-2", "新表")

    retired = client.post("/devices/meter-new-01/retire", headers=headers)
    assert retired.status_code == 200 and retired.json()["lifecycle"] == "retired"
    assert client.post("/devices/meter-new-01/retire", headers=headers).status_code == 409
    assert [a for _, a, _ in _audit(seeded)] == ["device.create", "device.update", "device.retire"]


def test_bad_fields_are_named(client: TestClient, auth: TokenMaker) -> None:
    headers = auth()
    cases = [
        ({"device_id": "x", "kind": "water_meter", "village": "v"}, "body.device_id"),
        ({"device_id": "meter-zz-01", "kind": "toaster", "village": "v"}, "body.kind"),
        ({"device_id": "meter-zz-01", "kind": "water_meter", "village": "v", "latitude": 91},
         "body.latitude"),
        ({"device_id": "meter-zz-01", "kind": "water_meter"}, "body.village"),
        ({"device_id": "meter-zz-01", "kind": "water_meter", "village": "v", "colour": "red"},
         "body.colour"),
    ]
    for body, field in cases:
        response = client.post("/devices", headers=headers, json=body)
        assert response.status_code == 422, body
        assert response.json()["field"] == field, (body, response.json())


def test_an_operator_cannot_move_a_device_out_of_scope(client: TestClient,
                                                        auth: TokenMaker) -> None:
    meter = device_id("water_meter", "east-1")
    response = client.patch(f"/devices/{meter}", headers=auth(Role.OPERATOR, "east"),
                            json={"township": "west", "village": "west-1"})
    assert response.status_code == 403


def test_import_all_or_nothing(client: TestClient, auth: TokenMaker, seeded: str) -> None:
    headers = auth(Role.OPERATOR, "west") | CSV_HEADERS
    good = "device_id,kind,township,village\nmeter-w-01,water_meter,west,west-1\n"
    bad = good + "meter-w-02,toaster,west,west-1\nmeter-w-03,water_meter,west,\n"
    refused = client.post("/devices/import", headers=headers, content=bad.encode())
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["body.line[3]", "body.line[4]"]
    assert client.get("/devices/meter-w-01", headers=headers).status_code == 404

    skipped = client.post("/devices/import", headers=headers, params={"skip_invalid": "true"},
                          content=bad.encode())
    assert skipped.status_code == 200, skipped.text
    assert (skipped.json()["created"], len(skipped.json()["skipped"])) == (1, 2)
    assert list(skipped.json()["secrets"]) == ["meter-w-01"]

    again = client.post("/devices/import", headers=headers,
                        content=good.replace("west-1", "west-2").encode())
    assert (again.json()["updated"], again.json()["secrets"]) == (1, {})

    outside = client.post("/devices/import", headers=headers,
                          content=b"device_id,kind,township,village\nm-e-01,water_meter,east,east-1\n")
    assert outside.status_code == 403
    not_csv = client.post("/devices/import", headers=auth(), json={"a": 1})
    assert not_csv.status_code == 415
