"""`GET /telemetry/latest` encodes its page as the `LatestPage` model would, and pages
through devices that have no values to show."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
from fastapi.testclient import TestClient

from devices import telemetry
from ground.principal import SYSTEM
from tests.api.conftest import NOW, TokenMaker, device_id
from village.api.routers.telemetry import LatestPage

METER = device_id("water_meter", "east-1")


def test_the_page_is_what_the_model_would_encode(client: TestClient, auth: TokenMaker,
                                                 seeded: str) -> None:
    with psycopg.connect(seeded) as conn:
        # Times with and without a fraction of a second; a value that is a whole number.
        conn.execute("INSERT INTO readings (device_id, metric, ts, value) VALUES"
                     " (%s, 'total_m3', %s, 200), (%s, 'battery_v', %s, 3.125)",
                     (METER, NOW + timedelta(minutes=5), METER,
                      NOW + timedelta(minutes=5, microseconds=120_000)))
        conn.execute("SELECT village_merge_latest(now() - interval '1 minute')")
        found = telemetry.latest(conn, SYSTEM, telemetry.LatestFilter(kind="water_meter"),
                                 None, 3)
    served = client.get("/telemetry/latest", params={"kind": "water_meter", "limit": 3},
                        headers=auth())
    assert served.headers["content-type"] == "application/json"
    model = LatestPage(items=found.values, next_after=found.next_after).model_dump_json()
    assert json.loads(served.content) == json.loads(model)
    assert {"total_m3", "battery_v"} <= {item["metric"] for item in served.json()["items"]}


def test_devices_without_values_still_move_the_cursor(seeded: str) -> None:
    with psycopg.connect(seeded) as conn:
        speakers = telemetry.latest(conn, SYSTEM, telemetry.LatestFilter(kind="speaker"), None, 2)
        assert speakers.values == [] and speakers.next_after is not None
        # A value of a metric the kind does not have is not shown, and the page goes on.
        conn.execute("INSERT INTO latest_values VALUES (%s, 'turbidity_ntu', %s, 1, %s)",
                     (METER, NOW, NOW))
        first = telemetry.latest(conn, SYSTEM, telemetry.LatestFilter(device_id=METER), None, 1)
        assert {v.metric for v in first.values} == {"total_m3", "flow_m3h"}
        assert first.next_after == METER
        seen, after = [], None
        while True:
            page = telemetry.latest(conn, SYSTEM, telemetry.LatestFilter(kind="speaker"), after, 2)
            seen.append(page.next_after)
            after = page.next_after
            if after is None:
                break
        devices = conn.execute("SELECT count(*) FROM devices WHERE kind = 'speaker'").fetchone()
        assert devices is not None and len(seen) == devices[0] // 2 + 1
