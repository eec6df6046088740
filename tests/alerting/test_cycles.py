"""The alerting passes against the real PostgreSQL, called directly with a fixed `now`."""

from __future__ import annotations

import time as wall
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest

from alerting.cycles import (
    ALERTING_APPLICATION,
    _horizon,
    dispatch_cycle,
    evaluate_cycle,
    judge_events,
    judge_readings,
    night_flow_cycle,
)
from alerting.files import load_rules
from alerting.notifiers.broadcast import ServiceStarter
from alerting.operations import (
    STATE_FILTERS,
    AlertDenied,
    AlertNotFound,
    SilenceError,
    acknowledge,
    create_silence,
    expire_silence,
    list_alerts,
    list_silences,
)
from alerting.tick import tick_cycle
from ground.principal import SYSTEM, Place, Principal, Role
from ingest.maintenance import MAINTENANCE_APPLICATION
from tests.clock import COUNTY, SHIFTED_CLOCKS
from tests.conftest import refresh_rollups

from .fixtures import Recorder, add_devices, add_readings, recording_engine
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
    engine = recording_engine([TURBIDITY], recorder)
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
    assert "turbidity_ntu = 2.4 NTU（阈值 1 NTU）" in message.text, message.text
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
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(-9), 1.5), (minutes(-4), 1.5)])
    evaluate_cycle(conn, recording_engine([TURBIDITY]))
    assert conn.execute("SELECT state, active_since FROM alert_states").fetchall() == [
        ("pending", minutes(-9))]
    # a new process: nothing in memory, the window goes on from -9
    fresh = recording_engine([TURBIDITY])
    evaluate_cycle(conn, fresh)  # re-reads the overlap: judged already, nothing new
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(1), 1.5)])
    evaluate_cycle(conn, fresh)
    evaluate_cycle(conn, fresh)
    rows = conn.execute("SELECT started_at, fired_at FROM alerts").fetchall()
    assert rows == [(minutes(-9), minutes(1))]


def test_a_township_outage_is_one_notice_and_mutes_the_devices(conn: psycopg.Connection) -> None:
    cameras = [(f"cam-{i:03d}", "camera", "T1", f"V{i % 3 + 1}") for i in range(300)]
    add_devices(conn, cameras + [("cam-t2", "camera", "T2", "V9")])
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO device_presence (device_id, last_seen) VALUES (%s, %s)",
                        [(c[0], minutes(-30)) for c in cameras] + [("cam-t2", minutes(-30))])
    recorder = Recorder()
    engine = recording_engine(load_rules([]), recorder)  # the presets
    outcome = tick_cycle(conn, engine, NOW)
    assert sorted({t.rule for t in outcome.transitions}) == ["area-outage", "cam-stopped"]
    assert len(outcome.transitions) == 302  # 301 cameras, one township outage (T2 has one)
    report = dispatch_cycle(conn, engine, NOW)
    assert sorted(a.view.rule for g in report.groups for a in g.alerts) == ["area-outage", "cam-stopped"]
    assert list(report.muted.values()) == ["inhibited"] * 300  # T1's cameras
    message, recipient = next((m, r) for m, r in recorder.sent if "area" in m.alerts[0]["rule"])
    assert recipient is not None and recipient.person_id == "office-t1"
    assert "100% 的设备无数据（阈值 50%）" in message.text


def test_a_silence_suppresses_until_it_ends(conn: psycopg.Connection) -> None:
    add_devices(conn, [("wq-1", "water_quality", "T1", "V1"), ("wq-2", "water_quality", "T1", "V2")])
    recorder = Recorder()
    engine = recording_engine([TURBIDITY], recorder)
    silence = create_silence(conn, Principal("op", Role.OPERATOR, Place("T1")),
                             {"township": "T1", "village": "V1"}, NOW, minutes(30), "flushing pipes",
                             NOW, "maintenance")
    for device in ("wq-1", "wq-2"):
        add_readings(conn, device, "turbidity_ntu", [(minutes(-20), 1.5), (minutes(-5), 1.5)])
    evaluate_cycle(conn, engine)
    report = dispatch_cycle(conn, engine, NOW)
    assert [a.view.device_id for g in report.groups for a in g.alerts] == ["wq-2"]
    assert list(report.muted.values()) == ["maintenance"]
    assert dispatch_cycle(conn, engine, minutes(10)).sent == 0  # still muted, wq-2 already told
    after = dispatch_cycle(conn, engine, minutes(31))  # the window is over: now it is told
    assert [a.view.device_id for g in after.groups for a in g.alerts] == ["wq-1"]
    assert silence.kind == "maintenance"


def test_a_gateway_outage_mutes_its_devices_stopped_alerts(conn: psycopg.Connection) -> None:
    add_devices(conn, [("gw-1", "gateway", "T1", "V1")])
    add_devices(conn, [(f"wm-{i}", "water_meter", "T1", "V1") for i in range(5)], gateway="gw-1")
    add_devices(conn, [("wm-solo", "water_meter", "T1", "V1")])
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO device_presence (device_id, last_seen) VALUES (%s, %s)",
                        [(d, minutes(-27 * 60)) for d in ["gw-1", "wm-solo"] + [f"wm-{i}" for i in range(5)]])
    recorder = Recorder()
    engine = recording_engine(load_rules([]), recorder)
    assert len(tick_cycle(conn, engine, NOW).transitions) == 7
    report = dispatch_cycle(conn, engine, NOW)
    told = sorted(a.view.device_id or "" for g in report.groups for a in g.alerts)
    assert told == ["gw-1", "wm-solo"]
    assert sorted(report.muted.values()) == ["inhibited"] * 5


def test_acknowledging_stops_repeats_and_escalation_and_is_scoped(conn: psycopg.Connection) -> None:
    add_devices(conn, [("wq-1", "water_quality", "T1", "V1")])
    recorder = Recorder()
    engine = recording_engine([TURBIDITY], recorder, repeat_interval="30s")
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(-20), 1.5), (minutes(-5), 1.5)])
    evaluate_cycle(conn, engine)
    assert dispatch_cycle(conn, engine, NOW).sent == 1
    assert [g.action for g in dispatch_cycle(conn, engine, minutes(0.6)).groups] == ["repeat"]
    (alert,) = list_alerts(conn, Principal("v1", Role.VIEWER, Place("T1", "V1")))
    with pytest.raises(AlertDenied):  # sees it, may not act on it
        acknowledge(conn, Principal("v1", Role.VIEWER, Place("T1", "V1")), alert.alert_id, "", NOW)
    with pytest.raises(AlertNotFound):  # another village's cadre does not even see it
        acknowledge(conn, Principal("other", Role.CADRE, Place("T1", "V2")), alert.alert_id, "", NOW)
    acked = acknowledge(conn, Principal("王", Role.CADRE, Place("T1", "V1")), alert.alert_id,
                        "去现场看", minutes(0.7))
    assert (acked.acknowledged_by, acked.ack_comment) == ("王", "去现场看")
    assert dispatch_cycle(conn, engine, minutes(5)).sent == 0  # no repeat, no escalation
    assert list_alerts(conn, SYSTEM, STATE_FILTERS["open"]) == []
    assert [a.alert_id for a in list_alerts(conn, SYSTEM, STATE_FILTERS["firing"])] == [alert.alert_id]


def test_silences_are_bounded_and_authorized(conn: psycopg.Connection) -> None:
    operator = Principal("op", Role.OPERATOR, Place("T1"))
    for matchers, ends, message in [
        ({}, minutes(10), "at least one matcher"),
        ({"colour": "red"}, minutes(10), "unknown label"),
        ({"township": "T1"}, minutes(60 * 24 * 31), "30 days"),
        ({"township": "T1"}, minutes(-1), "end after"),
    ]:
        with pytest.raises(SilenceError, match=message):
            create_silence(conn, operator, matchers, NOW, ends, "", NOW)
    with pytest.raises(AlertDenied):
        create_silence(conn, operator, {"township": "T2"}, NOW, minutes(10), "", NOW)
    with pytest.raises(AlertDenied):
        create_silence(conn, operator, {"kind": "camera"}, NOW, minutes(10), "", NOW)  # county-wide
    made = create_silence(conn, operator, {"township": "T1", "kind": "camera"}, NOW, minutes(10), "", NOW)
    assert [s.id for s in list_silences(conn, operator, NOW)] == [made.id]
    assert list_silences(conn, Principal("v", Role.VIEWER, Place("T2")), NOW) == []  # not theirs
    expire_silence(conn, operator, made.id, minutes(1))
    assert list_silences(conn, SYSTEM, minutes(2)) == []


def test_the_broadcast_action_records_a_broadcast_for_the_village(conn: psycopg.Connection,
                                                                  database_url: str) -> None:
    add_devices(conn, [("spk-1", "speaker", "T1", "V1"), ("spk-2", "speaker", "T1", "V2")])
    starter = ServiceStarter(database_url, clock=lambda: NOW)
    broadcast_id = starter("T1", "V1", "自来水暂停饮用", "emergency", "wq-turbidity-critical")
    row = conn.execute("SELECT priority, text, created_by FROM broadcasts WHERE broadcast_id = %s",
                       (broadcast_id,)).fetchone()
    assert row == ("emergency", "自来水暂停饮用", "rule:wq-turbidity-critical")
    speakers = conn.execute("SELECT device_id FROM broadcast_deliveries WHERE broadcast_id = %s",
                            (broadcast_id,)).fetchall()
    assert speakers == [("spk-1",)]
    with pytest.raises(ValueError):  # no speaker there: the broadcast service refuses
        starter("T9", "V9", "x", "emergency", "r")


@pytest.mark.parametrize("clock", list(SHIFTED_CLOCKS.values()), ids=list(SHIFTED_CLOCKS))
def test_night_flow_per_village_against_its_baseline(conn: psycopg.Connection, clock: datetime) -> None:
    meters = [(f"wm-{i}", "water_meter", "T1", "V1") for i in range(3)]
    add_devices(conn, meters)
    shanghai = COUNTY
    today = clock.astimezone(shanghai).date()
    for i in range(3):
        points = []
        register = 100.0
        for night in range(10, 0, -1):  # ten nights before today; the last one leaks
            flow = 0.05 if night > 1 else 0.2  # m³ per meter per night hour
            for minute in range(0, 121, 15):  # 02:00 .. 04:00 local, every 15 minutes
                at = datetime.combine(today - timedelta(days=night - 1), time(2), shanghai) \
                    + timedelta(minutes=minute)
                points.append((at, register))
                register += flow / 4
        add_readings(conn, f"wm-{i}", "total_m3", points)
    engine = recording_engine(load_rules([]))
    outcome = night_flow_cycle(conn, engine, datetime.combine(today, time(5), shanghai))
    fired = [(t.rule, t.subject.village, t.to_state) for t in outcome.transitions]
    assert fired == [("wm-night-flow", "V1", "firing")]
    (alert,) = conn.execute("SELECT device_id, village, value, threshold FROM alerts").fetchall()
    assert alert[0] is None and alert[1] == "V1"
    assert alert[2] > alert[3] > 0
    again = night_flow_cycle(conn, engine, datetime.combine(today, time(6), shanghai))
    assert again.transitions == []  # each night is judged once


def test_a_batch_committed_late_is_still_judged(conn: psycopg.Connection, database_url: str) -> None:
    add_devices(conn, [("wq-1", "water_quality", "T1", "V1"), ("wq-2", "water_quality", "T1", "V1")])
    ph = rule({"threshold": {"above": 9}}, metric="ph", name="ph-high")
    engine = recording_engine([ph])
    # The storage for these minutes exists before the slow writer starts: on TimescaleDB a
    # chunk created in an open transaction holds every other writer until it commits.
    add_readings(conn, "wq-2", "ph", [(minutes(-3), 7.0)])
    with psycopg.connect(database_url) as slow:  # a writer whose transaction stays open
        add_readings(slow, "wq-1", "ph", [(minutes(-2), 11.0)])  # received_at: its start
        add_readings(conn, "wq-2", "ph", [(minutes(-1), 7.0)])  # committed meanwhile
        evaluate_cycle(conn, engine)
        (mark,) = conn.execute("SELECT position FROM alerting_watermarks WHERE source = 'readings'"
                               ).fetchone()  # type: ignore[misc]
        started = slow.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        assert mark <= started  # not past the open writer
        slow.commit()
    evaluate_cycle(conn, engine)
    assert conn.execute("SELECT device_id FROM alerts").fetchall() == [("wq-1",)]


def test_events_are_judged_in_a_pass_of_their_own_ahead_of_the_readings(
        conn: psycopg.Connection) -> None:
    add_devices(conn, [("cam-1", "camera", "T1", "V1"), ("wq-1", "water_quality", "T1", "V1")])
    tamper = rule({"event": {"types": ["tamper"]}}, kind="camera", name="cam-tamper")
    engine = recording_engine([tamper, rule({"threshold": {"above": 9}}, metric="ph", name="ph-high")])
    add_readings(conn, "wq-1", "ph", [(minutes(-2), 11.0)])
    conn.execute("INSERT INTO events (device_id, ts, type, severity, body)"
                 " VALUES ('cam-1', %s, 'tamper', 'major', '{}')", (minutes(-1),))
    assert judge_events(conn, engine) == (1, 1)  # an event read, an alert opened
    assert conn.execute("SELECT rule FROM alerts").fetchall() == [("cam-tamper",)]
    assert dispatch_cycle(conn, engine, NOW).sent == 1  # sent before any reading is judged
    assert judge_readings(conn, engine) == (1, 1)
    assert conn.execute("SELECT rule FROM alerts ORDER BY id").fetchall() == [
        ("cam-tamper",), ("ph-high",)]


def test_a_readings_pass_reads_at_most_its_batch_and_the_rest_next(
        conn: psycopg.Connection) -> None:
    add_devices(conn, [("wq-1", "water_quality", "T1", "V1")])
    engine = recording_engine([TURBIDITY])
    add_readings(conn, "wq-1", "turbidity_ntu", [(minutes(m), 0.5) for m in range(-5, 0)])
    assert [judge_readings(conn, engine, limit=2) for _ in range(4)] == [
        (2, 0), (2, 0), (1, 0), (0, 0)]  # below the threshold: nothing to send


def test_a_device_never_heard_counts_its_silence_from_registration(conn: psycopg.Connection) -> None:
    add_devices(conn, [("cam-new", "camera", "T1", "V1")])
    engine = recording_engine([rule({"stopped": {}}, kind="camera", name="cam-stopped")])
    registered = conn.execute("SELECT created_at FROM devices").fetchone()[0]  # type: ignore[index]
    assert tick_cycle(conn, engine, registered + timedelta(minutes=4)).transitions == []
    assert len(tick_cycle(conn, engine, registered + timedelta(minutes=6)).transitions) == 1


def test_conductivity_against_the_probes_own_baseline(conn: psycopg.Connection) -> None:
    add_devices(conn, [("wq-1", "water_quality", "T1", "V1")])
    # The baseline days start two days back: the fresh readings below may fall on yesterday
    # (county time) when the suite runs just after midnight.
    today = datetime.now(UTC).astimezone(COUNTY).replace(hour=12, minute=0, second=0, microsecond=0)
    add_readings(conn, "wq-1", "conductivity_us_cm",
                 [(today - timedelta(days=d, hours=h), 790 + d + h) for d in range(2, 7) for h in (0, 6)])
    refresh_rollups(conn)
    presets = [r for r in load_rules([]) if r.name == "wq-conductivity-baseline"]
    engine = recording_engine(presets)
    evaluate_cycle(conn, engine)
    now = datetime.now(UTC)
    add_readings(conn, "wq-1", "conductivity_us_cm", [(now - timedelta(minutes=40), 1100.0),
                                                     (now - timedelta(minutes=5), 1120.0)])
    evaluate_cycle(conn, engine)
    (alert,) = conn.execute("SELECT rule, value, threshold FROM alerts").fetchall()
    assert alert[0] == "wq-conductivity-baseline" and alert[1] == 1120.0
    assert alert[2] == pytest.approx(1.3 * 797)  # the median of the daily means 795..799


@pytest.mark.parametrize(("application", "holds_back"), [
    ("village-ingest", True), (MAINTENANCE_APPLICATION, False), (ALERTING_APPLICATION, False)])
def test_the_horizon_waits_for_open_writers_but_not_for_maintenance_nor_alerting(
        conn: psycopg.Connection, database_url: str, application: str, holds_back: bool) -> None:
    # A writer's rows carry its start as received_at, so the stream reads nothing stored
    # after it began until it ends. Ingest's maintenance stores no readings nor events,
    # and its rollup refresh, seconds long after a burst, held every alert back that long;
    # nor does alerting, whose readings' pass would hold its events' pass back.
    with psycopg.connect(database_url, application_name=application) as writer:
        began = writer.execute("SELECT now()").fetchone()
        writer.execute("INSERT INTO rollup_watermarks (rollup, refreshed_to)"
                       " VALUES ('test-held', now()) ON CONFLICT DO NOTHING")
        wall.sleep(0.3)
        horizon = _horizon(conn)
        writer.rollback()
    assert began is not None
    assert (horizon <= began[0]) is holds_back
