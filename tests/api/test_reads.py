"""Devices and telemetry reads against a real, seeded database."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import NOW, TokenMaker, device_id

METER = device_id("water_meter", "east-1")


def _iso(offset_hours: float) -> str:
    return (NOW + timedelta(hours=offset_hours)).isoformat()


def test_devices_list_filters_and_pages(client: TestClient, auth: TokenMaker) -> None:
    headers = auth()
    everything = client.get("/devices", headers=headers).json()
    assert len(everything["items"]) == 12 and everything["next_after"] is None
    meters = client.get("/devices", params={"kind": "water_meter", "township": "west"},
                        headers=headers).json()["items"]
    assert [d["device_id"] for d in meters] == [device_id("water_meter", v)
                                                for v in ("west-1", "west-2")]
    assert client.get("/devices", params={"status": "online"}, headers=headers).json()["items"] == []
    seen, after = [], None
    while True:
        params = {"limit": 5} | ({"after": after} if after else {})
        body = client.get("/devices", params=params, headers=headers).json()
        seen += [d["device_id"] for d in body["items"]]
        after = body["next_after"]
        if after is None:
            break
    assert seen == sorted(d["device_id"] for d in everything["items"])


def test_a_scoped_token_lists_only_its_place(client: TestClient, auth: TokenMaker) -> None:
    headers = auth(Role.VIEWER, "west", "west-2")
    items = client.get("/devices", headers=headers).json()["items"]
    assert {d["village"] for d in items} == {"west-2"} and len(items) == 3


def test_show_device_and_its_errors(client: TestClient, auth: TokenMaker) -> None:
    headers = auth()
    shown = client.get(f"/devices/{METER}", headers=headers)
    assert shown.status_code == 200 and shown.json()["township"] == "east"
    missing = client.get("/devices/nope-000", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_latest_values_page_through_devices(client: TestClient, auth: TokenMaker) -> None:
    headers = auth()
    body = client.get("/telemetry/latest", params={"kind": "water_meter", "metric": "total_m3"},
                      headers=headers).json()
    values = {item["device_id"]: item["value"] for item in body["items"]}
    assert values == pytest.approx({device_id("water_meter", v): 100 + 71 * 0.1
                                    for vs in (("east-1", "east-2"), ("west-1", "west-2"))
                                    for v in vs})
    first = client.get("/telemetry/latest", params={"limit": 3}, headers=headers).json()
    assert first["next_after"] is not None
    one = client.get(f"/devices/{METER}/latest", headers=headers).json()
    assert {item["metric"] for item in one} == {"total_m3", "flow_m3h"}


def test_series_raw_and_bucketed(client: TestClient, auth: TokenMaker) -> None:
    headers = auth()
    raw = client.get(f"/devices/{METER}/series", headers=headers, params={
        "metric": "total_m3", "from": _iso(-5), "to": _iso(0)}).json()
    assert [p["v"] for p in raw["points"]] == pytest.approx([106.7, 106.8, 106.9, 107.0, 107.1])
    hourly_delta = client.get(f"/devices/{METER}/series", headers=headers, params={
        "metric": "total_m3", "from": _iso(-5), "to": _iso(0), "bucket": "1h", "agg": "delta",
    }).json()["points"]
    assert [p["v"] for p in hourly_delta] == pytest.approx([0.1] * 5)
    fifteen_max = client.get(f"/devices/{METER}/series", headers=headers, params={
        "metric": "total_m3", "from": _iso(-2), "to": _iso(0), "bucket": "15m", "agg": "max",
    }).json()["points"]
    assert [p["v"] for p in fifteen_max] == pytest.approx([107.0, 107.1])


def test_consumption_per_village_per_day(client: TestClient, auth: TokenMaker) -> None:
    body = client.get("/telemetry/places", headers=auth(Role.VIEWER, "east"), params={
        "kind": "water_meter", "metric": "total_m3", "from": _iso(-24 * 5), "to": _iso(1),
    }).json()
    assert {row["village"] for row in body} == {"east-1", "east-2"}
    # 72 hourly readings growing by 0.1: 7.1 m3 between the first and the last one.
    per_village = {v: sum(r["value"] for r in body if r["village"] == v) for v in ("east-1", "east-2")}
    assert per_village == pytest.approx({"east-1": 7.1, "east-2": 7.1})
    townships = client.get("/telemetry/places", headers=auth(), params={
        "kind": "water_meter", "metric": "total_m3", "from": _iso(-24 * 5), "to": _iso(1),
        "level": "township",
    }).json()
    assert {row["township"] for row in townships} == {"east", "west"}
    assert sum(r["value"] for r in townships) == pytest.approx(4 * 7.1)


@pytest.mark.parametrize("params, field", [
    ({"from": _iso(-1), "to": _iso(-2)}, "query.to"),
    ({"from": _iso(-24 * 30), "to": _iso(0)}, "query.from"),
    ({"from": (NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat(), "to": _iso(0)},
     "query.from"),
    ({"from": _iso(-24 * 300), "to": _iso(0), "bucket": "1m"}, "query.bucket"),
    ({"to": _iso(0)}, "query.from"),
    ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T00:01:00Z", "bucket": "1m"}, "query.from"),
    ({"from": _iso(-1), "to": _iso(0), "bucket": "2h"}, "query.bucket"),
])
def test_ranges_are_bounded_and_the_field_is_named(client: TestClient, auth: TokenMaker,
                                                  params: dict[str, str], field: str) -> None:
    response = client.get(f"/devices/{METER}/series", headers=auth(),
                          params={"metric": "total_m3"} | params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_page_size_is_bounded(client: TestClient, auth: TokenMaker) -> None:
    response = client.get("/devices", params={"limit": 100_000}, headers=auth())
    assert response.status_code == 422 and response.json()["field"] == "query.limit"


def test_latest_shows_the_newest_merged_value_and_ignores_late_data(
        client: TestClient, auth: TokenMaker, seeded: str) -> None:
    other = device_id("water_meter", "west-2")
    with psycopg.connect(seeded) as conn:
        conn.execute("INSERT INTO readings (device_id, metric, ts, value) VALUES"
                     " (%s, 'total_m3', %s, 999), (%s, 'battery_v', %s, 3.3),"
                     " (%s, 'total_m3', %s, 1)",
                     (METER, NOW + timedelta(minutes=5), other, NOW - timedelta(days=20),
                      other, NOW - timedelta(days=20)))
        conn.execute("SELECT village_merge_latest(now() - interval '1 minute')")
    items = client.get("/telemetry/latest", params={"kind": "water_meter"},
                       headers=auth()).json()["items"]
    values = {(i["device_id"], i["metric"]): i["value"] for i in items}
    assert values[(METER, "total_m3")] == 999
    assert values[(other, "battery_v")] == 3.3
    # A reading older than the stored newest one does not replace it.
    assert values[(other, "total_m3")] == 100 + 71 * 0.1
