"""`village ingest` against real Mosquitto and PostgreSQL, fed hundreds of hostile messages
between valid ones: it stays up, stores every valid reading once, dead-letters every hostile
message that reaches it, and a restart never meets one of them again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from devices.topics import Channel, topic
from ground.local import MosquittoServer
from ground.mqtt import BROKER_MESSAGE_SIZE_LIMIT
from simulators.hostile import CASES, HostileGenerator
from tests.ingest.conftest import (
    Publisher,
    register,
    rows,
    scalar,
    start_ingest_process,
    wait_until,
)

NOW = datetime.now(UTC).replace(microsecond=0)
BASE = NOW - timedelta(days=1)
METERS = [f"wm-{n:03d}" for n in range(10)]
ROUNDS = 300


def extra_hostile(prefix: str) -> list[tuple[str, bytes]]:
    """Hostile messages the generator does not make (they need a gateway or a valve)."""
    gateway = topic(prefix, "gw-1", Channel.GATEWAY_TELEMETRY)
    meter = topic(prefix, "wm-000", Channel.TELEMETRY)
    return [
        (gateway, b'{"wm-\\u0000": {"flow_m3h": 1}}'),
        (gateway, b'{"wm-\\ud800": {"flow_m3h": 1}}'),
        (gateway, b'{"wm-c1": {"ts": -62135596800001, "flow_m3h": 1}}'),
        (meter, b'{"valve_open": 0.5}'),
        (meter, b'{"valve_open": 1e-320}'),
        (meter, b'{"rssi_dbm": true}'),
        (meter, b'{"ts": -62135596800001, "flow_m3h": 1}'),
        (meter, b'{"ts": 253402300800000, "flow_m3h": 1}'),
        (meter, b'{"ts": "0001-01-01T00:00:00+14:00", "flow_m3h": 1}'),
        (topic(prefix, "cam-1", Channel.EVENT), b'{"type": "motion", "detail": {"v": NaN}}'),
        (topic(prefix, "cam-1", Channel.STATUS), b'{"state": "online", "ip": "\\ud800"}'),
    ]


@pytest.mark.slow
def test_hostile_stream_never_stops_ingest(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    register(database_url, [(m, "water_meter") for m in METERS]
             + [("gw-1", "gateway"), ("wm-c1", "water_meter", "gw-1"), ("cam-1", "camera")])
    generator = HostileGenerator(topic_prefix, [(m, "water_meter") for m in METERS]
                                 + [("cam-1", "camera")], seed=12)
    hostile = [generator.next(NOW)[1] for _ in range(ROUNDS - 2 * len(CASES))]
    # Every case at least twice, whatever the random draw.
    hostile += [HostileGenerator(topic_prefix, [("wm-001", "water_meter")], cases=[case])
                .next(NOW)[1] for case in CASES for _ in range(2)]
    hostile_messages = [(h.topic, h.payload) for h in hostile] + extra_hostile(topic_prefix)
    # A topic outside ingest's subscriptions never reaches it (sent all the same).
    reaching = sum(1 for h in hostile if h.case != "bad_topic") + len(extra_hostile(topic_prefix))
    log = tmp_path / "ingest.log"
    worker = start_ingest_process(database_url, mosquitto.url, topic_prefix, "ingest-e2e", log)
    try:
        pub = Publisher(mosquitto.url)

        def probe() -> bool:  # until the worker has subscribed, a probe reaches nobody
            pub.publish(topic(topic_prefix, "wm-009", Channel.TELEMETRY),
                        {"ts": NOW.isoformat(), "total_m3": 0.5})
            pub.flush()
            return scalar(database_url, "SELECT count(*) FROM readings") == 1

        wait_until(probe, what="the worker to store a first reading")
        valid = 1
        for n, (name, payload) in enumerate(hostile_messages):
            ts = (BASE + timedelta(seconds=n)).isoformat()
            pub.publish(topic(topic_prefix, METERS[n % len(METERS)], Channel.TELEMETRY),
                        {"ts": ts, "total_m3": n, "flow_m3h": 1})
            pub.publish(topic(topic_prefix, "gw-1", Channel.GATEWAY_TELEMETRY),
                        {"wm-c1": {"ts": ts, "total_m3": n}})
            valid += 3
            pub.publish(name, payload)
            assert worker.poll() is None, log.read_text()[-3000:]
        # Above the broker's limit: refused by the broker, never reaches ingest.
        pub.publish(topic(topic_prefix, "wm-000", Channel.TELEMETRY),
                    b"x" * (BROKER_MESSAGE_SIZE_LIMIT + 1), qos=0)
        pub.close()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM dead_letters")
                   >= reaching
                   and scalar(database_url, "SELECT count(*) FROM readings") >= valid,
                   timeout_s=90, what="every hostile message dead-lettered")
        assert worker.poll() is None, log.read_text()[-3000:]
        worker.terminate()
        worker.wait(30)
        assert worker.returncode == 0, log.read_text()[-3000:]
        # Restarted on its persistent session: nothing of the above comes back.
        worker = start_ingest_process(database_url, mosquitto.url, topic_prefix, "ingest-e2e",
                                      log)
        pub = Publisher(mosquitto.url)
        pub.publish(topic(topic_prefix, "wm-009", Channel.TELEMETRY),
                    orjson.dumps({"ts": (NOW + timedelta(seconds=1)).isoformat(),
                                  "total_m3": 0.25}))
        pub.close()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") == valid + 1,
                   timeout_s=60, what="the restarted worker's sentinel")
    finally:
        worker.terminate()
        worker.wait(30)
    assert worker.returncode == 0, log.read_text()[-3000:]
    assert scalar(database_url, "SELECT count(*) FROM dead_letters") == reaching
    assert rows(database_url, "SELECT reason, count(*) FROM dead_letters"
                " WHERE reason IN ('internal_error', 'storage_refused') GROUP BY 1") == []
    # Every valid reading once, with its own value.
    assert rows(database_url, "SELECT count(*), count(DISTINCT (device_id, metric, ts))"
                " FROM readings") == [(valid + 1, valid + 1)]
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE device_id = 'wm-c1'"
                  " AND value <> extract(epoch FROM ts - %s)", BASE) == 0
