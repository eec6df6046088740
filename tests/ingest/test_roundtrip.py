"""Messages published to a real Mosquitto land in real PostgreSQL, once, with their values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from devices.models import telemetry_model
from devices.topics import Channel, topic
from ground.local import MosquittoServer
from tests.ingest.conftest import (
    Publisher,
    ingest_settings,
    register,
    rows,
    running_worker,
    scalar,
    wait_until,
)

NOW = datetime.now(UTC).replace(microsecond=0)
SAMPLES: dict[str, dict[str, float]] = {
    "water_meter": {"total_m3": 1234.567, "flow_m3h": 0.12, "battery_v": 3.61,
                    "rssi_dbm": -97, "temperature_c": 11.5, "valve_open": True},
    "water_quality": {"ph": 7.2, "turbidity_ntu": 0.4, "chlorine_mg_l": 0.35,
                      "conductivity_us_cm": 820, "temperature_c": 14.0,
                      "dissolved_oxygen_mg_l": 7.9, "orp_mv": 650, "battery_v": 12.1},
    "camera": {"storage_used_pct": 71.5, "bitrate_kbps": 2048, "fps": 25,
               "temperature_c": 41.0, "rssi_dbm": -60},
    "barn": {"temperature_c": 27.5, "humidity_pct": 71, "nh3_ppm": 12.5, "co2_ppm": 1400,
             "h2s_ppm": 2.5, "body_temp_c": 39.1},
    "speaker": {"volume_pct": 80, "temperature_c": 35.0, "rssi_dbm": -70},
}


def stored(database_url: str, device_id: str) -> dict[tuple[str, datetime], float]:
    return {(m, ts): v for m, ts, v in rows(
        database_url, "SELECT metric, ts, value FROM readings WHERE device_id = %s", device_id)}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_kinds_sample_is_stored_with_its_values_and_timestamp(
    kind: str, database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    device_id = f"{kind[:3]}-0001"
    register(database_url, [(device_id, kind)])
    # The payload comes from the kind's model, as simulators build it.
    reading = telemetry_model(kind).model_validate({"ts": NOW - timedelta(minutes=5),
                                                     **SAMPLES[kind]})
    with running_worker(ingest_settings(database_url, mosquitto.url, topic_prefix)):
        publisher = Publisher(mosquitto.url)
        publisher.publish(topic(topic_prefix, device_id, Channel.TELEMETRY), reading.to_payload())
        publisher.close()
        wait_until(lambda: len(stored(database_url, device_id)) == len(SAMPLES[kind]),
                   what="the readings")
    expected = {(name, NOW - timedelta(minutes=5)): float(value)
                for name, value in SAMPLES[kind].items()}
    assert stored(database_url, device_id) == expected
    assert scalar(database_url, "SELECT count(*) FROM dead_letters") == 0


def test_arrays_values_form_epoch_ms_duplicates_events_and_gateways(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    register(database_url, [("wm-1", "water_meter"), ("cam-1", "camera"), ("gw-1", "gateway"),
                            ("wm-child-1", "water_meter", "gw-1"),
                            ("wm-child-2", "water_meter", "gw-1")])
    base = NOW - timedelta(days=1)
    backlog = [{"ts": (base + timedelta(minutes=15 * i)).isoformat(), "total_m3": 100 + i}
               for i in range(96)]
    epoch_ms = int((NOW - timedelta(minutes=1)).timestamp() * 1000)
    with running_worker(ingest_settings(database_url, mosquitto.url, topic_prefix)):
        pub = Publisher(mosquitto.url)
        telemetry = topic(topic_prefix, "wm-1", Channel.TELEMETRY)
        pub.publish(telemetry, backlog)
        pub.publish(telemetry, backlog[:10])  # a store-and-forward resend: stored once
        pub.publish(telemetry, {"ts": epoch_ms, "values": {"flow_m3h": 0.5, "battery_v": 3.5}})
        pub.publish(telemetry, [{"ts": epoch_ms, "values": {"flow_m3h": 0.5}}])  # duplicate
        pub.publish(topic(topic_prefix, "cam-1", Channel.EVENT),
                    {"ts": NOW.isoformat(), "type": "person", "severity": "warning",
                     "snapshot_url": "https://example.org/s.jpg", "detail": {"zone": "gate"}})
        pub.publish(topic(topic_prefix, "cam-1", Channel.EVENT),
                    {"ts": NOW.isoformat(), "type": "person"})  # the same event again
        pub.publish(topic(topic_prefix, "gw-1", Channel.GATEWAY_TELEMETRY),
                    {"wm-child-1": {"ts": NOW.isoformat(), "total_m3": 12.5},
                     "wm-child-2": [{"ts": NOW.isoformat(), "total_m3": 3.1},
                                    {"ts": (NOW - timedelta(hours=1)).isoformat(),
                                     "total_m3": 3.0}]})
        pub.close()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 96 + 2 + 3
                   and scalar(database_url, "SELECT count(*) FROM events") == 1,
                   what="every reading and the event")
    assert [v for (m, _), v in sorted(stored(database_url, "wm-1").items(),
                                      key=lambda kv: kv[0][1]) if m == "total_m3"] \
        == [float(100 + i) for i in range(96)]
    when = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    assert stored(database_url, "wm-1")[("flow_m3h", when)] == 0.5
    assert stored(database_url, "wm-child-2") == {
        ("total_m3", NOW): 3.1, ("total_m3", NOW - timedelta(hours=1)): 3.0}
    event = rows(database_url, "SELECT type, severity, body->'detail'->>'zone' FROM events")
    assert event == [("person", "warning", "gate")]
    seen = dict(rows(database_url, "SELECT device_id, last_seen IS NOT NULL FROM device_presence"))
    assert seen == {"wm-1": True, "cam-1": True, "gw-1": True, "wm-child-1": True,
                    "wm-child-2": True}
    assert scalar(database_url, "SELECT count(*) FROM dead_letters") == 0


def test_each_commit_is_announced_with_its_counts_and_time(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    register(database_url, [("wm-1", "water_meter")])
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN village_ingest")
        with running_worker(ingest_settings(database_url, mosquitto.url, topic_prefix)):
            pub = Publisher(mosquitto.url)
            pub.publish(topic(topic_prefix, "wm-1", Channel.TELEMETRY),
                        [{"ts": (NOW - timedelta(minutes=i)).isoformat(), "total_m3": i}
                         for i in range(5)])
            pub.publish(topic(topic_prefix, "nobody", Channel.TELEMETRY), {"total_m3": 1})
            pub.close()
            notices = []
            for note in listener.notifies(timeout=10):
                notices.append(orjson.loads(note.payload))
                if sum(n["readings"] for n in notices) == 5 \
                        and sum(n["dead_letters"] for n in notices) == 1:
                    break
    assert sum(n["readings"] for n in notices) == 5
    stored_at = {n["stored_at"] for n in notices if n["readings"]}
    received = rows(database_url, "SELECT DISTINCT received_at FROM readings")
    assert {datetime.fromisoformat(s) for s in stored_at} == {r[0] for r in received}
