"""A small county with known behaviour, written into a real database for the panel tests.

Built from the device models (`devices/models.py`) and stored through the pure decoder, so
the rows are what ingest would store. Each household and probe has a behaviour the tests
check for: a leak, a meter swap, a silent meter, a turbid station, a hot barn.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from devices.catalogue import kind_named
from devices.decode import Limits, Reading, decode_telemetry
from devices.models import telemetry_model
from tests.conftest import refresh_rollups

DAYS = 8
UPLOAD = 96  # reading sets per message, like an NB-IoT meter's daily upload


@dataclass(frozen=True)
class Device:
    """A registry row."""

    device_id: str
    kind: str
    township: str | None
    village: str
    site: str | None = None
    name: str | None = None
    firmware: str = "1.0.0"
    species: str | None = None
    latitude: float = 30.5
    longitude: float = 114.3


DEVICES = (
    Device("wm-normal-1", "water_meter", "东河镇", "李家村", name="李一户"),
    Device("wm-normal-2", "water_meter", "东河镇", "王庄村", name="王二户"),
    Device("wm-leak", "water_meter", "东河镇", "李家村", name="李漏户"),
    Device("wm-swap", "water_meter", "西山乡", "Xi'an", name="换表户"),
    Device("wm-silent", "water_meter", "西山乡", "Xi'an", name="静默户", firmware="0.9.0"),
    Device("wm-nowhere", "water_meter", None, "无乡村", name="无乡镇户"),
    Device("wq-good", "water_quality", "东河镇", "李家村", site="东河水厂"),
    Device("wq-turbid", "water_quality", "西山乡", "Xi'an", site="西山泵站"),
    Device("barn-cattle", "barn", "东河镇", "王庄村", site="牛场", species="cattle"),
    Device("barn-pigs", "barn", "西山乡", "Xi'an", site="猪场", species="pigs"),
    Device("cam-1", "camera", "东河镇", "李家村", firmware="5.2"),
    Device("cam-2", "camera", "西山乡", "Xi'an", firmware="5.3"),
    Device("spk-1", "speaker", "东河镇", "王庄村"),
)

# The leaking household uses this much in every hour, day and night.
LEAK_M3H = 0.004
DAY_USE_M3H = 0.03
SWAP_DAY = 3  # days before now when wm-swap's register restarts from zero
SILENT_SINCE = timedelta(days=4, hours=12)
TURBID_NTU = 2.5


def meter_use(device_id: str, hour_start: datetime) -> float:
    """What a household uses in one hour starting here (county time is UTC+8)."""
    local_hour = (hour_start.hour + 8) % 24
    daytime = DAY_USE_M3H if 6 <= local_hour < 22 else 0.0
    leak = LEAK_M3H if device_id == "wm-leak" else 0.0
    return daytime + leak


def _reading_sets(device: Device, now: datetime) -> list[tuple[datetime, dict[str, float]]]:
    sets: list[tuple[datetime, dict[str, float]]] = []
    start = now - timedelta(days=DAYS)
    if device.kind == "water_meter":
        end = now - SILENT_SINCE if device.device_id == "wm-silent" else now
        total = 100.0
        t = start
        while t <= end:
            if device.device_id == "wm-swap" and abs((now - t) - timedelta(days=SWAP_DAY)) < timedelta(minutes=7):
                total = 0.0  # the new meter starts from zero
            values = {"total_m3": round(total, 6), "flow_m3h": meter_use(device.device_id, t)}
            if t.minute == 0 and t.hour == 0:
                values["battery_v"] = 3.0 if device.device_id == "wm-leak" else 3.6
            sets.append((t, values))
            total += meter_use(device.device_id, t) / 4
            t += timedelta(minutes=15)
    elif device.kind == "water_quality":
        t = now - timedelta(days=2)
        index = 0
        while t <= now:
            turbid = device.device_id == "wq-turbid" and index % 6 == 0
            sets.append((t, {
                "ph": 7.2 + 0.1 * math.sin(index / 10),
                "turbidity_ntu": TURBID_NTU if turbid else 0.4,
                "chlorine_mg_l": 0.3,
                "conductivity_us_cm": 450.0,
                "dissolved_oxygen_mg_l": 7.5,
                "temperature_c": 15.0,
            }))
            index += 1
            t += timedelta(minutes=10)
    elif device.kind == "barn":
        t = now - timedelta(days=2)
        index = 0
        while t <= now:
            hot = device.device_id == "barn-cattle"
            sets.append((t, {
                "temperature_c": 32.0 if hot else 20.0,
                "humidity_pct": 70.0,
                "nh3_ppm": 30.0 if hot else 10.0,
                "h2s_ppm": 2.0,
                "co2_ppm": 600.0,
                "body_temp_c": 40.2 if hot else 38.6,
            }))
            index += 1
            t += timedelta(minutes=10)
    elif device.kind == "camera":
        t = now - timedelta(days=1)
        while t <= now:
            sets.append((t, {"storage_used_pct": 40.0, "fps": 25.0, "bitrate_kbps": 2048.0}))
            t += timedelta(hours=1)
    return sets


def readings_of(device: Device, now: datetime) -> list[Reading]:
    """The device's readings, as the decoder turns its published payloads into rows."""
    kind = kind_named(device.kind)
    model = telemetry_model(device.kind)
    payloads = [model(ts=ts, **values).to_payload() for ts, values in _reading_sets(device, now)]
    readings: list[Reading] = []
    for first in range(0, len(payloads), UPLOAD):
        decoded = decode_telemetry(device.device_id, payloads[first:first + UPLOAD], kind, now, Limits())
        assert not decoded.rejections, decoded.rejections[:3]
        readings.extend(decoded.readings)
    return readings


def fill(database_url: str, now: datetime) -> None:
    """Write the county's registry, readings, events, presence and dead letters."""
    with psycopg.connect(database_url) as conn:
        for index, d in enumerate(DEVICES):
            tags = json.dumps({"species": d.species} if d.species else {})
            conn.execute(
                "INSERT INTO devices (device_id, kind, name, township, village, site, latitude,"
                " longitude, firmware, tags) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (d.device_id, d.kind, d.name, d.township, d.village, d.site,
                 d.latitude + index * 0.01, d.longitude, d.firmware, tags),
            )
            rows = readings_of(d, now)
            with conn.cursor().copy(
                "COPY readings (device_id, metric, ts, value, received_at) FROM STDIN"
            ) as copy:
                for r in rows:
                    copy.write_row((r.device_id, r.metric, r.ts, r.value, now))
            # Heard just now, except the meter that went silent. Presence is judged against the
            # database's own clock (device_status compares with now()), so "just now" is its now.
            silent_since = now - SILENT_SINCE if d.device_id == "wm-silent" else None
            conn.execute(
                "INSERT INTO device_presence (device_id, last_seen, reported_state, firmware)"
                " VALUES (%s, coalesce(%s, now()), 'online', %s)",
                (d.device_id, silent_since, d.firmware),
            )
        conn.execute(
            "INSERT INTO events (device_id, ts, type, severity, body) VALUES"
            " ('wm-leak', %s, 'leak', 'warning', '{\"type\": \"leak\"}'),"
            " ('cam-1', %s, 'person', 'info', '{\"type\": \"person\"}')",
            (now - timedelta(hours=5), now - timedelta(hours=2)),
        )
        for minutes in (5, 65, 125):
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload,"
                " payload_bytes) VALUES (%s, 'sv/x/telemetry', 'wm-normal-1', 'bad_json',"
                " 'not JSON', '\\x00', 1)",
                (now - timedelta(minutes=minutes),),
            )
        _alerts_and_broadcasts(conn, now)
        # Rows written without ingest: merged into latest_values as an import would be.
        conn.execute("SELECT village_merge_latest()")
        refresh_rollups(conn)


# Alerts: one critical firing in Xi'an acknowledged after 12 minutes, one major in 李家村
# firing and unacknowledged, one minor resolved. One broadcast to two speakers: one confirmed.
ACK_MINUTES = 12


def _alerts_and_broadcasts(conn: psycopg.Connection, now: datetime) -> None:
    rows = (
        ("wq-turbid", "critical", "firing", "西山乡", "Xi'an", "西山泵站", timedelta(minutes=ACK_MINUTES)),
        ("wm-leak", "major", "firing", "东河镇", "李家村", None, None),
        ("barn-pigs", "minor", "resolved", "西山乡", "Xi'an", "猪场", None),
    )
    for index, (device, severity, state, township, village, site, ack) in enumerate(rows):
        fired = now - timedelta(hours=3 + index)
        conn.execute(
            "INSERT INTO alerts (fingerprint, rule, condition, severity, state, device_id,"
            " township, village, site, summary, value, started_at, fired_at, resolved_at,"
            " acknowledged_at, acknowledged_by)"
            " VALUES (%s, %s, 'threshold', %s, %s, %s, %s, %s, %s, %s, 1.5, %s, %s, %s, %s, %s)",
            (f"fp-{index}", f"rule-{severity}", severity, state, device, township, village, site,
             f"{severity} on {device}", fired, fired,
             now if state == "resolved" else None,
             fired + ack if ack else None, "cadre" if ack else None),
        )
    conn.execute(
        "INSERT INTO notifications (alert_ids, group_key, action, level, receiver, channel,"
        " status, attempts, created_at) VALUES ('{1}', 'g', 'firing', 0, 'village', 'webhook',"
        " 'sent', 1, %s), ('{1}', 'g', 'firing', 0, 'village', 'sms', 'failed', 3, %s)",
        (now - timedelta(hours=2), now - timedelta(hours=2)),
    )
    conn.execute(
        "INSERT INTO broadcasts (broadcast_id, created_at, created_by, creator_role, priority,"
        " text, repeat, expires_at, scope, scope_label, place_township, place_village)"
        " VALUES ('b-1', %s, 'operator', 'operator', 'emergency', '停水通知', 1, %s,"
        " '{\"village\": \"王庄村\"}', '王庄村', '东河镇', '王庄村')",
        (now - timedelta(hours=1), now + timedelta(hours=1)),
    )
    for device, state in (("spk-1", "done"), ("cam-1", "no_answer")):
        conn.execute(
            "INSERT INTO broadcast_deliveries (broadcast_id, device_id, priority_rank,"
            " expires_at, state, updated_at) VALUES ('b-1', %s, 2, %s, %s, %s)",
            (device, now + timedelta(hours=1), state, now),
        )
