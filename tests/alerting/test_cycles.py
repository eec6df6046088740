"""The alerting passes against the real PostgreSQL, called directly with a fixed `now`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerting.cycles import dispatch_cycle, evaluate_cycle, tick_cycle
from alerting.rules import load_rules

from .fixtures import Recorder, add_devices, add_readings, engine_for, two_level_routing
from .helpers import rule

# Ahead of the wall clock: alerts are created (wall time) before any `now` the tests pass.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
TURBIDITY = rule({"threshold": {"above": 1.0, "clear_below": 0.8, "for": "10m"}},
                 metric="turbidity_ntu", name="wq-turbidity")


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def minutes(m: float) -> datetime:
    return NOW + timedelta(minutes=m)


def test_fire_notify_escalate_resolve(conn: psycopg.Connection) -> None:
    add_devices(conn, [("wq-1", "water_quality", "T1", "V1")])
    recorder = Recorder()
    engine = engine_for([TURBIDITY], two_level_routing(
        [{"name": "rec", "type": "console"}], ["rec"], ["rec"]), {"rec": recorder})
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(-20), 0.5), (minutes(-15), 1.6)])
    assert evaluate_cycle(conn, engine) == 2
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(-5), 2.4)])
    evaluate_cycle(conn, engine)
    alert = conn.execute("SELECT id, state, value, threshold, started_at, village FROM alerts").fetchall()
    assert [(a[1], a[2], a[3], a[4], a[5]) for a in alert] == [("firing", 2.4, 1.0, minutes(-15), "V1")]

    report = dispatch_cycle(conn, engine, NOW)
    assert report.sent == 1
    message, recipient = recorder.sent[0]
    assert recipient is not None and recipient.person_id == "cadre-v1"
    assert "turbidity_ntu = 2.4（阈值 1）" in message.text, message.text
    assert "wq-1" in message.text and "T1 / V1" in message.text and "测试" in message.title
    assert f"http://phone.example/a/{alert[0][0]}-cadre-v1" in message.text
    assert dispatch_cycle(conn, engine, minutes(0.5)).sent == 0  # told once, not twice

    escalated = dispatch_cycle(conn, engine, minutes(1.5))
    assert [(g.action, g.level) for g in escalated.groups] == [("escalation", 1)]
    assert recorder.sent[-1][1].person_id == "office-t1"  # type: ignore[union-attr]

    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(-1), 0.9), (minutes(0), 0.7)])
    evaluate_cycle(conn, engine)
    resolved = dispatch_cycle(conn, engine, minutes(2))
    assert [g.action for g in resolved.groups] == ["resolved"]
    told = sorted(r.person_id for _, r in recorder.sent[-2:] if r)
    assert told == ["cadre-v1", "office-t1"]
    assert dispatch_cycle(conn, engine, minutes(10)).sent == 0
    states = conn.execute("SELECT to_state FROM alert_transitions ORDER BY id").fetchall()
    assert [s[0] for s in states] == ["firing", "escalated", "resolved"]
    log = conn.execute("SELECT action, level, person_id, status FROM notifications ORDER BY id").fetchall()
    assert log == [("firing", 0, "cadre-v1", "sent"), ("escalation", 1, "office-t1", "sent"),
                   ("resolved", 1, "cadre-v1", "sent"), ("resolved", 1, "office-t1", "sent")]


def test_restart_in_a_for_window_neither_loses_nor_duplicates(conn: psycopg.Connection) -> None:
    add_devices(conn, [("wq-1", "water_quality", "T1", "V1")])
    routing = two_level_routing([{"name": "rec", "type": "console"}], ["rec"], ["rec"])
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(-9), 1.5), (minutes(-4), 1.5)])
    evaluate_cycle(conn, engine_for([TURBIDITY], routing, {"rec": Recorder()}))
    assert conn.execute("SELECT state, active_since FROM alert_states").fetchall() == [
        ("pending", minutes(-9))]
    # a new process: nothing in memory, the window goes on from -9
    fresh = engine_for([TURBIDITY], routing, {"rec": Recorder()})
    evaluate_cycle(conn, fresh)  # re-reads the overlap: judged already, nothing new
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(1), 1.5)])
    evaluate_cycle(conn, fresh)
    evaluate_cycle(conn, fresh)
    rows = conn.execute("SELECT started_at, fired_at FROM alerts").fetchall()
    assert rows == [(minutes(-9), minutes(1))]


def test_presets_load_and_a_camera_outage_is_one_grouped_notice(conn: psycopg.Connection) -> None:
    cameras = [(f"cam-{i:03d}", "camera", "T1", f"V{i % 3 + 1}") for i in range(300)]
    add_devices(conn, cameras)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO device_presence (device_id, last_seen) VALUES (%s, %s)",
                        [(c[0], minutes(-30)) for c in cameras])
    recorder = Recorder()
    routing = two_level_routing([{"name": "rec", "type": "console"}], ["rec"], ["rec"])
    engine = engine_for(load_rules([]), routing, {"rec": recorder})
    outcome = tick_cycle(conn, engine, NOW)
    assert len(outcome.transitions) == 300
    report = dispatch_cycle(conn, engine, NOW)
    assert report.sent == 1 and len(report.groups) == 1
    message, recipient = recorder.sent[0]
    assert recipient is not None and recipient.person_id == "office-t1"  # spans villages
    assert len(message.alerts) == 300 and "300" in message.title
