"""`GET /telemetry/latest/columns`: a kind's latest values as columns, equal to what the
paged `GET /telemetry/latest` gives over the same data, in the same scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from devices import telemetry
from ground.principal import Role
from tests.api.conftest import NOW, TokenMaker, device_id
from village.api.routers.telemetry import accepts_gzip

COLUMNS = "/telemetry/latest/columns"
PLAIN = {"Accept-Encoding": "identity"}


@pytest.fixture
def varied(seeded: str) -> str:
    """The seed plus a battery reading on two meters and a meter that never reported."""
    with psycopg.connect(seeded) as conn:
        conn.execute("INSERT INTO readings (device_id, metric, ts, value) VALUES"
                     " (%s, 'battery_v', %s, 3.125), (%s, 'battery_v', %s, 3.5)",
                     (device_id("water_meter", "east-1"), NOW + timedelta(microseconds=120_000),
                      device_id("water_meter", "west-2"), NOW - timedelta(days=2)))
        conn.execute("INSERT INTO devices (device_id, kind, township, village, grid)"
                     " VALUES (%s, 'water_meter', 'west', 'west-1', 'g1')",
                     (device_id("water_meter", "west-1", 2),))
        conn.execute("SELECT village_merge_latest(now() - interval '1 minute')")
    return seeded


def paged(client: TestClient, headers: dict[str, str], params: dict[str, str]) -> dict[tuple, tuple]:
    """Every page of the paged form, as (device, metric) -> (value, ts)."""
    found: dict[tuple, tuple] = {}
    after = None
    while True:
        body = client.get("/telemetry/latest", headers=headers,
                          params=params | {"limit": "2"} | ({"after": after} if after else {})).json()
        found |= {(i["device_id"], i["metric"]): (i["value"], i["ts"]) for i in body["items"]}
        after = body["next_after"]
        if after is None:
            return found


def cells(body: dict[str, Any]) -> dict[tuple, tuple]:
    """The columns' values, as (device, metric) -> (value, ts), leaving out the nulls."""
    return {(device, metric): (column["value"][row], column["ts"][row])
            for metric, column in body["metrics"].items()
            for row, device in enumerate(body["device_id"]) if column["value"][row] is not None}


def test_the_columns_hold_what_the_pages_hold(client: TestClient, auth: TokenMaker,
                                              varied: str) -> None:
    headers = auth() | PLAIN
    every = client.get(COLUMNS, params={"kind": "water_meter"}, headers=headers).json()
    meters = client.get("/devices", params={"kind": "water_meter"}, headers=headers).json()["items"]
    assert every["device_id"] == sorted(d["device_id"] for d in meters)
    assert every["village"] == [d["village"] for d in sorted(meters, key=lambda d: d["device_id"])]
    assert every["next_after"] is None and every["kind"] == "water_meter"
    TypeAdapter(telemetry.LatestColumns).validate_python(every)  # as documented
    assert list(every["metrics"]) == ["total_m3", "flow_m3h", "valve_open", "battery_v",
                                      "rssi_dbm", "temperature_c"]
    assert cells(every) == paged(client, headers, {"kind": "water_meter"})
    # The meter that never reported has a row of nulls; east-1's battery keeps its fraction.
    silent = every["device_id"].index(device_id("water_meter", "west-1", 2))
    assert all(column["value"][silent] is None and column["ts"][silent] is None
               for column in every["metrics"].values())
    assert cells(every)[(device_id("water_meter", "east-1"), "battery_v")][1].endswith(".120000Z")

    two = client.get(COLUMNS, params={"kind": "water_meter", "metric": ["battery_v", "total_m3"],
                                      "township": "west"}, headers=headers).json()
    assert list(two["metrics"]) == ["battery_v", "total_m3"]
    again = client.get(COLUMNS, params={"kind": "water_meter", "township": "west",
                                        "metric": ["battery_v", "total_m3", "battery_v"]},
                       headers=headers).json()
    assert again == two  # a metric asked twice is one column
    assert cells(two) == {key: value for key, value in paged(
        client, headers, {"kind": "water_meter", "township": "west"}).items()
        if key[1] in ("battery_v", "total_m3")}


def test_pages_of_columns_add_up_to_one_answer(client: TestClient, auth: TokenMaker,
                                               varied: str) -> None:
    headers = auth() | PLAIN
    whole = client.get(COLUMNS, params={"kind": "water_meter", "metric": "total_m3"},
                       headers=headers).json()
    joined: dict[str, list] = {"device_id": [], "value": []}
    after = None
    while True:
        page = client.get(COLUMNS, params={"kind": "water_meter", "metric": "total_m3",
                                           "limit": "2"} | ({"after": after} if after else {}),
                          headers=headers).json()
        joined["device_id"] += page["device_id"]
        joined["value"] += page["metrics"]["total_m3"]["value"]
        after = page["next_after"]
        if after is None:
            break
    assert joined == {"device_id": whole["device_id"], "value": whole["metrics"]["total_m3"]["value"]}
    assert len(joined["device_id"]) == 5


def test_packed_when_the_client_takes_gzip(client: TestClient, auth: TokenMaker) -> None:
    params = {"kind": "water_meter"}
    plain = client.get(COLUMNS, params=params, headers=auth() | PLAIN)
    assert "content-encoding" not in plain.headers
    packed = client.get(COLUMNS, params=params, headers=auth() | {"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.json() == plain.json()  # the client unpacked it
    refused = client.get(COLUMNS, params=params, headers=auth() | {"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    assert refused.content == plain.content


@pytest.mark.parametrize("header, takes", [
    ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.5", True), ("*", True),
    ("identity", False), ("", False), ("gzip;q=0", False), ("*;q=0, gzip", True),
    ("gzip;q=0, *", False), ("GZIP", True), ("gzip;q=nonsense", False), ("deflate", False),
])
def test_which_accept_encoding_takes_gzip(header: str, takes: bool) -> None:
    assert accepts_gzip(header) is takes


def test_the_scope_is_the_paged_forms(client: TestClient, auth: TokenMaker, varied: str) -> None:
    west_2 = auth(Role.VIEWER, "west", "west-2") | PLAIN
    mine = client.get(COLUMNS, params={"kind": "water_meter"}, headers=west_2).json()
    assert mine["device_id"] == [device_id("water_meter", "west-2")]
    assert cells(mine) == paged(client, west_2, {"kind": "water_meter"})
    # Asking for another township narrows to nothing, as the paged form does.
    elsewhere = client.get(COLUMNS, params={"kind": "water_meter", "township": "east"},
                           headers=west_2).json()
    assert elsewhere["device_id"] == [] and elsewhere["metrics"]["total_m3"] == {"value": [],
                                                                                  "ts": []}
    assert paged(client, west_2, {"kind": "water_meter", "township": "east"}) == {}
    cadre = auth(Role.CADRE, "east") | PLAIN
    assert {v for v in client.get(COLUMNS, params={"kind": "water_meter"},
                                  headers=cadre).json()["village"]} == {"east-1", "east-2"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
def test_no_values_without_a_valid_token(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get(COLUMNS, params={"kind": "water_meter"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["field"] == "header.authorization"


@pytest.mark.parametrize("params, field, says", [
    ({}, "query.kind", "required"),
    ({"kind": "toaster"}, "query.kind", "unknown device kind 'toaster'"),
    ({"kind": "water_meter", "metric": "turbidity_ntu"}, "query.metric",
     "a water_meter has no metric 'turbidity_ntu'; its metrics: total_m3, flow_m3h"),
    ({"kind": "water_meter", "metric": ["total_m3", "nope"]}, "query.metric", "'nope'"),
    ({"kind": "water_meter", "limit": "0"}, "query.limit", "greater than or equal to 1"),
    ({"kind": "water_meter", "limit": "20001"}, "query.limit", "less than or equal to 20000"),
    ({"kind": "water_meter", "limit": "many"}, "query.limit", "integer"),
    ({"kind": "water_meter", "after": "a\x00b"}, "query.after", "NUL"),
])
def test_bad_parameters_are_named(client: TestClient, auth: TokenMaker, params: dict[str, Any],
                                  field: str, says: str) -> None:
    response = client.get(COLUMNS, params=params, headers=auth())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field and says in response.json()["detail"]


def test_documented_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][COLUMNS]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LatestColumns"}
    assert {p["name"] for p in operation["parameters"]} == {
        "kind", "metric", "township", "village", "after", "limit"}
    assert set(schema["components"]["schemas"]["LatestColumns"]["properties"]) == {
        "kind", "device_id", "township", "village", "metrics", "next_after"}
