"""The delivery engine against a real database, with a recording Publisher and a fixed clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from broadcast import store
from broadcast.delivery import Happening
from broadcast.engine import Engine
from broadcast.inbound import Ack, Presence
from broadcast.model import BroadcastRequest, Scope
from broadcast.service import cancel_broadcast, create_broadcast, delivery_report
from ground.principal import SYSTEM
from tests.broadcast.conftest import SPEAKERS, T0, RecordingPublisher


def send(conn: psycopg.Connection, priority: str = "normal", at: datetime = T0,
         expires_in_s: int = 600, speakers: list[str] | None = None) -> str:
    request = BroadcastRequest(scope=Scope.of_speakers(*(speakers or SPEAKERS)),
                               text=f"{priority} notice", priority=priority,
                               expires_in_s=expires_in_s)
    return create_broadcast(conn, request, SYSTEM, at)


def ack(broadcast_id: str, device_id: str, result: str, at: datetime,
        reason: str | None = None) -> Ack:
    return Ack(device_id, broadcast_id, Happening(result), reason, at)


def states(conn: psycopg.Connection, broadcast_id: str) -> dict[str, str]:
    rows = conn.execute("SELECT device_id, state FROM broadcast_deliveries"
                        " WHERE broadcast_id = %s", (broadcast_id,)).fetchall()
    return dict(rows)


def test_online_speakers_are_sent_offline_ones_queued_at_the_broker(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    b = send(conn)
    engine.cycle(conn, T0)
    assert publisher.sent[0][1] == {
        "id": b, "op": "play", "priority": "normal", "text": "normal notice", "audio_url": None,
        "volume_pct": None, "repeat": 1, "expires_at": "2026-11-22T08:10:00Z"}
    assert publisher.take() == [(d, "play", b) for d in SPEAKERS]
    assert states(conn, b) == {"spk-1": "sent", "spk-2": "sent", "spk-3": "sent",
                               "spk-4": "offline"}
    engine.cycle(conn, T0 + timedelta(seconds=1))
    assert publisher.take() == []  # nothing new, nothing due


def test_acks_move_deliveries_and_the_report_is_exact(
        conn: psycopg.Connection, engine: Engine) -> None:
    b = send(conn)
    engine.cycle(conn, T0)
    t = T0 + timedelta(seconds=2)
    engine.on_acks(conn, [
        ack(b, "spk-1", "accepted", t), ack(b, "spk-1", "done", t + timedelta(seconds=1)),
        ack(b, "spk-2", "rejected", t, "busy with higher priority emergency (x)"),
        ack(b, "spk-1", "accepted", t + timedelta(seconds=2)),  # a late duplicate: ignored
        ack("not-a-broadcast", "spk-3", "accepted", t),  # a valve command's, say
        ack(b + "-stop", "spk-3", "done", t),
    ], t)
    assert states(conn, b) == {"spk-1": "done", "spk-2": "rejected", "spk-3": "sent",
                               "spk-4": "offline"}
    accepted_at = conn.execute("SELECT accepted_at FROM broadcast_deliveries"
                               " WHERE device_id = 'spk-1'").fetchone()
    assert accepted_at == (t,)
    report = delivery_report(conn, b, SYSTEM, t)
    assert (report.speakers, report.confirmed) == (4, 1)
    assert report.counts == {"offline": 1, "sent": 1, "done": 1, "rejected": 1}
    assert [(u["device_id"], u["state"], u["reason"]) for u in report.unconfirmed] == [
        ("spk-2", "rejected", "busy with higher priority emergency (x)"),
        ("spk-3", "sent", None), ("spk-4", "offline", None)]


def test_unanswered_speakers_are_retried_with_the_same_id_until_expiry(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    b = send(conn, expires_in_s=25)
    engine.cycle(conn, T0)
    publisher.take()
    engine.on_acks(conn, [ack(b, "spk-1", "accepted", T0)], T0)
    engine.cycle(conn, T0 + timedelta(seconds=9))
    assert publisher.take() == []
    engine.cycle(conn, T0 + timedelta(seconds=10))
    assert publisher.take() == [("spk-2", "play", b), ("spk-3", "play", b)]
    engine.on_presence(conn, [Presence("spk-3", False)], T0 + timedelta(seconds=11))
    engine.cycle(conn, T0 + timedelta(seconds=20))
    assert publisher.take() == [("spk-2", "play", b)]  # spk-3 went away: wait for it
    assert b in engine._payloads
    engine.cycle(conn, T0 + timedelta(seconds=25))
    assert publisher.take() == []
    assert states(conn, b) == {"spk-1": "accepted", "spk-2": "no_answer", "spk-3": "expired",
                               "spk-4": "expired"}
    attempts: dict[str, int] = dict(conn.execute("SELECT device_id, attempts FROM broadcast_deliveries"))
    assert attempts == {"spk-1": 1, "spk-2": 3, "spk-3": 2, "spk-4": 1}
    # A daemon runs for months: an expired broadcast's command is not kept in memory.
    assert b not in engine._payloads


def test_a_speaker_that_comes_back_gets_the_broadcast_unless_it_expired(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    b = send(conn, expires_in_s=60)
    engine.cycle(conn, T0)
    publisher.take()
    engine.on_presence(conn, [Presence("spk-4", True), Presence("spk-1", True)],
                       T0 + timedelta(seconds=30))
    assert publisher.take() == [("spk-4", "play", b)]
    assert states(conn, b)["spk-4"] == "sent"
    late = send(conn, expires_in_s=120, speakers=["spk-4"], at=T0 + timedelta(seconds=31))
    engine.on_presence(conn, [Presence("spk-4", False)], T0 + timedelta(seconds=31))
    engine.cycle(conn, T0 + timedelta(seconds=31))
    publisher.take()
    engine.on_presence(conn, [Presence("spk-4", True)], T0 + timedelta(seconds=95))
    assert publisher.take() == [("spk-4", "play", late)]  # the first one expired meanwhile
    engine.cycle(conn, T0 + timedelta(seconds=100))
    assert states(conn, b)["spk-4"] == "expired"  # offline (or held) when it expired


def test_an_emergency_goes_to_all_at_once_and_holds_back_lower_priorities(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    normal = send(conn, "normal")
    engine.cycle(conn, T0)
    engine.on_acks(conn, [ack(normal, d, "accepted", T0) for d in SPEAKERS[:3]], T0)
    publisher.take()
    t1 = T0 + timedelta(seconds=1)
    emergency = send(conn, "emergency", at=t1, speakers=["spk-1", "spk-2"])
    engine.cycle(conn, t1)
    assert publisher.take() == [("spk-1", "play", emergency), ("spk-2", "play", emergency)]
    engine.on_acks(conn, [ack(normal, "spk-1", "failed", t1, "preempted"),
                          ack(emergency, "spk-1", "accepted", t1)], t1)
    t2 = T0 + timedelta(seconds=2)
    later = send(conn, "alert", at=t2, speakers=["spk-1", "spk-2", "spk-3"])
    engine.cycle(conn, t2)
    assert publisher.take() == [("spk-3", "play", later)]
    assert states(conn, later) == {"spk-1": "held", "spk-2": "held", "spk-3": "sent"}
    t3 = T0 + timedelta(seconds=3)
    engine.on_acks(conn, [ack(emergency, "spk-1", "done", t3)], t3)
    assert publisher.take() == [("spk-1", "play", later)]  # released when the emergency ended
    assert states(conn, later)["spk-2"] == "held"  # spk-2 has not answered the emergency yet


def test_cancel_stops_those_that_were_sent_it_and_nothing_else(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    b = send(conn)
    emergency = send(conn, "emergency", speakers=["spk-1"])
    engine.cycle(conn, T0)  # the emergency goes first
    engine.on_acks(conn, [ack(b, "spk-2", "done", T0)], T0)
    publisher.take()
    assert states(conn, b)["spk-1"] == "held"
    report = cancel_broadcast(conn, b, SYSTEM, T0 + timedelta(seconds=1))
    assert report.counts == {"cancelled": 3, "done": 1}
    engine.cycle(conn, T0 + timedelta(seconds=1))
    assert sorted(publisher.take()) == [("spk-3", "stop", b + "-stop"),
                                        ("spk-4", "stop", b + "-stop")]
    stop = conn.execute("SELECT count(*) FROM broadcast_deliveries WHERE stop_sent_at IS NOT NULL")
    assert stop.fetchone() == (2,)
    engine.on_acks(conn, [ack(b, "spk-3", "accepted", T0 + timedelta(seconds=2))], T0)
    assert states(conn, b)["spk-3"] == "cancelled"
    assert states(conn, emergency) == {"spk-1": "sent"}


def test_a_retry_waits_behind_an_emergency_that_came_meanwhile(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    normal = send(conn, "normal", speakers=["spk-1"])
    engine.cycle(conn, T0)
    emergency = send(conn, "emergency", speakers=["spk-1"], at=T0 + timedelta(seconds=1))
    engine.cycle(conn, T0 + timedelta(seconds=1))
    engine.on_acks(conn, [ack(emergency, "spk-1", "accepted", T0)], T0 + timedelta(seconds=1))
    publisher.take()
    engine.cycle(conn, T0 + timedelta(seconds=10))  # the normal one's retry is due
    assert publisher.take() == []
    assert states(conn, normal) == {"spk-1": "held"}


def test_a_held_broadcast_goes_out_only_after_the_stop_of_what_held_it(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    emergency = send(conn, "emergency", speakers=["spk-1"])
    engine.cycle(conn, T0)
    normal = send(conn, "normal", speakers=["spk-1"], at=T0 + timedelta(seconds=1))
    engine.cycle(conn, T0 + timedelta(seconds=1))
    publisher.take()
    t2 = T0 + timedelta(seconds=2)
    cancel_broadcast(conn, emergency, SYSTEM, t2)
    # Until its stop is out, the speaker still counts as busy with the emergency (a pass that
    # began before the cancel committed must not release the normal one ahead of the stop)...
    assert store.busy_ranks(conn, ["spk-1"], t2) == {"spk-1": 2}
    # ...the next pass sends the stop, then the held broadcast, in that order.
    engine.cycle(conn, T0 + timedelta(seconds=3))
    assert publisher.take() == [("spk-1", "stop", emergency + "-stop"),
                                ("spk-1", "play", normal)]
    assert store.busy_ranks(conn, ["spk-1"], T0 + timedelta(seconds=3)) == {"spk-1": 0}
