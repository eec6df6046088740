"""Bad input is dead-lettered with a precise reason, and the good messages around it are stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

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
LIMIT = 256 * 1024  # the contract's payload limit, the default
KEPT = 4096  # dead-letter payloads are truncated to this by default

# (case, device id, kind, channel, payload, expected reason, a reading of it is stored)
CASES: list[tuple[str, str, str, Channel, bytes, str, bool]] = [
    ("not json", "bad-01", "water_meter", Channel.TELEMETRY, b"hello", "invalid_json", False),
    ("invalid utf-8", "bad-02", "water_meter", Channel.TELEMETRY, b'{"total_m3": "\xff\xfe"}',
     "not_utf8", False),
    ("array of numbers", "bad-03", "water_meter", Channel.TELEMETRY, b"[1, 2, 3]",
     "wrong_shape", False),
    ("string value", "bad-04", "water_meter", Channel.TELEMETRY, b'{"total_m3": "12.5"}',
     "bad_value_type", False),
    ("null value", "bad-05", "water_meter", Channel.TELEMETRY, b'{"total_m3": null}',
     "bad_value_type", False),
    ("NaN", "bad-06", "water_meter", Channel.TELEMETRY, b'{"total_m3": NaN}', "non_finite", False),
    ("Infinity", "bad-07", "water_meter", Channel.TELEMETRY, b'{"total_m3": Infinity}',
     "non_finite", False),
    ("1e309", "bad-08", "water_meter", Channel.TELEMETRY, b'{"total_m3": 1e309}', "non_finite",
     False),
    ("pH 15", "bad-09", "water_quality", Channel.TELEMETRY, b'{"ph": 15}', "out_of_range", False),
    ("ts an hour ahead", "bad-10", "water_meter", Channel.TELEMETRY,
     orjson.dumps({"ts": (NOW + timedelta(hours=1)).isoformat(), "total_m3": 1}),
     "ts_in_future", False),
    ("ts in 1970", "bad-11", "water_meter", Channel.TELEMETRY,
     b'{"ts": "1970-01-01T00:00:00Z", "total_m3": 1}', "ts_too_old", False),
    ("ts malformed", "bad-12", "water_meter", Channel.TELEMETRY,
     b'{"ts": "yesterday", "total_m3": 1}', "bad_timestamp", False),
    ("unknown device", "nobody-13", "", Channel.TELEMETRY, b'{"total_m3": 1}',
     "unknown_device", False),
    ("over the size limit", "bad-14", "water_meter", Channel.TELEMETRY,
     b'{"total_m3": 1, "pad": "' + b"x" * LIMIT + b'"}', "too_large", False),
    ("10,000 metrics", "bad-15", "water_meter", Channel.TELEMETRY,
     orjson.dumps({f"m{i}": i for i in range(10_000)}), "too_many_metrics", False),
    ("metric name with a quote", "bad-16", "water_meter", Channel.TELEMETRY,
     b'{"a\\"b": 1, "total_m3": 7}', "bad_metric_name", True),
    ("metric name with SQL", "bad-17", "water_meter", Channel.TELEMETRY,
     b'{"x\'); DROP TABLE readings; --": 1}', "bad_metric_name", False),
    ("metric name with a control character", "bad-18", "water_meter", Channel.TELEMETRY,
     b'{"a\\u0000b": 1}', "bad_metric_name", False),
    ("good and bad metrics", "bad-19", "water_meter", Channel.TELEMETRY,
     b'{"total_m3": 5, "flow_m3h": "fast", "battery_v": 99}', "bad_value_type", True),
    ("retired device", "bad-20", "retired", Channel.TELEMETRY, b'{"total_m3": 1}',
     "retired_device", False),
    ("gateway topic from a meter", "bad-21", "water_meter", Channel.GATEWAY_TELEMETRY,
     b'{"bad-01": {"total_m3": 1}}', "not_a_gateway", False),
    ("event without a type", "bad-22", "camera", Channel.EVENT, b'{"severity": "info"}',
     "bad_event", False),
    ("status nonsense", "bad-23", "camera", Channel.STATUS, b"sleepy", "bad_status", False),
    ("too many entries", "bad-24", "water_meter", Channel.TELEMETRY,
     orjson.dumps([{"total_m3": 1}] * 1001),
     "too_many_entries", False),
    # Valid JSON that PostgreSQL's jsonb refuses: refused before it reaches the database.
    ("event with a NUL", "bad-25", "camera", Channel.EVENT,
     b'{"type": "motion", "detail": {"x": "a\\u0000b"}}', "bad_event", False),
    # Each of these stopped the worker for good (it crash-looped on the redelivery).
    ("ts below year 1", "bad-26", "water_meter", Channel.TELEMETRY,
     b'{"ts": -62135596800001, "flow_m3h": 1}', "bad_timestamp", False),
    ("gateway child key with a NUL, from a meter", "bad-27", "water_meter",
     Channel.GATEWAY_TELEMETRY, b'{"wm-\\u0000": {"flow_m3h": 1}}', "not_a_gateway", False),
    ("gateway child key with a lone surrogate", "bad-28", "gateway", Channel.GATEWAY_TELEMETRY,
     b'{"wm-\\ud800": {"flow_m3h": 1}, "wm-\\u0000": {}}', "wrong_shape", False),
    ("event with a lone surrogate in a key", "bad-29", "camera", Channel.EVENT,
     b'{"type": "motion", "detail": {"\\udfff": 1}}', "bad_event", False),
    ("event nested 40 deep", "bad-30", "camera", Channel.EVENT,
     b'{"type": "motion", "detail": ' + b"[" * 40 + b"]" * 40 + b"}", "bad_event", False),
    ("status firmware with a NUL", "bad-31", "camera", Channel.STATUS,
     b'{"state": "online", "fw": "1.0\\u0000"}', "bad_status", False),
    ("rssi true", "bad-32", "water_meter", Channel.TELEMETRY, b'{"rssi_dbm": true}',
     "bad_value_type", False),
    ("valve half open", "bad-33", "water_meter", Channel.TELEMETRY, b'{"valve_open": 0.5}',
     "out_of_range", False),
    ("valve open a denormal", "bad-34", "water_meter", Channel.TELEMETRY,
     b'{"valve_open": 1e-320}', "out_of_range", False),
]


def test_each_bad_input_is_dead_lettered_with_its_reason_and_the_good_ones_stored(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    devices = [("wm-good", "water_meter"), ("gw-other", "gateway"), ("gw-1", "gateway"),
               ("wm-foreign", "water_meter", "gw-other")]
    devices += [(device_id, kind if kind != "retired" else "water_meter")
                for _, device_id, kind, *_ in CASES if kind]
    register(database_url, devices)
    rows(database_url, "UPDATE devices SET lifecycle = 'retired' WHERE device_id = 'bad-20'"
                       " RETURNING 1")
    good = topic(topic_prefix, "wm-good", Channel.TELEMETRY)
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix)
    with running_worker(settings):
        pub = Publisher(mosquitto.url)
        for index, (_, device_id, _, channel, payload, _, _) in enumerate(CASES):
            pub.publish(good, {"ts": (NOW - timedelta(minutes=index + 1)).isoformat(),
                               "total_m3": index})
            pub.publish(topic(topic_prefix, device_id, channel), payload)
        pub.publish(f"{topic_prefix}/x/telemetry", b'{"total_m3": 1}')  # too short an id
        pub.publish(f"{topic_prefix}/wm good!/telemetry", b'{"total_m3": 1}')
        pub.publish(topic(topic_prefix, "gw-1", Channel.GATEWAY_TELEMETRY),
                    {"wm-foreign": {"total_m3": 1}, "wm-good": {"total_m3": 2}})
        pub.publish(good, {"ts": NOW.isoformat(), "total_m3": 999})
        pub.close()
        expected_letters = len(CASES) + 3
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM dead_letters")
                   == expected_letters and scalar(
                       database_url, "SELECT count(*) FROM readings WHERE device_id = 'wm-good'"
                   ) == len(CASES) + 1, what="every dead letter and good reading")
    letters = {device_id: (reason, partial, detail) for device_id, reason, partial, detail in rows(
        database_url, "SELECT device_id, reason, partial, detail FROM dead_letters")}
    for case, device_id, _, _, _, reason, partial in CASES:
        assert letters[device_id][:2] == (reason, partial), (case, letters[device_id])
    assert letters["gw-1"][0] == "foreign_device"
    assert letters["gw-1"][1] is False  # wm-good is not assigned to gw-1 either
    bad_topics = rows(database_url, "SELECT topic, reason FROM dead_letters WHERE device_id IS NULL")
    assert sorted(bad_topics) == sorted([(f"{topic_prefix}/wm good!/telemetry", "bad_topic"),
                                         (f"{topic_prefix}/x/telemetry", "bad_topic")])
    # The partial messages kept their good metrics.
    assert rows(database_url, "SELECT device_id, metric, value FROM readings"
                " WHERE device_id IN ('bad-16', 'bad-19') ORDER BY 1") == [
        ("bad-16", "total_m3", 7.0), ("bad-19", "total_m3", 5.0)]
    # Payloads are kept, truncated to the bound, with their full size.
    kept, size = rows(database_url, "SELECT length(payload), payload_bytes FROM dead_letters"
                      " WHERE device_id = 'bad-14'")[0]
    assert (kept, size) == (KEPT, len(CASES[13][4]))
    problems = scalar(database_url,
                      "SELECT problems FROM dead_letters WHERE device_id = 'bad-19'")
    assert sorted(p["reason"] for p in problems) == ["bad_value_type", "out_of_range"]
