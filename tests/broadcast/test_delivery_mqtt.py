"""The delivery daemon end to end: simulated speakers, a private Mosquitto, real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from broadcast.daemon import DaemonHandle
from broadcast.model import BroadcastRequest, Scope
from broadcast.schedules import create_schedule
from broadcast.service import Report, cancel_broadcast, create_broadcast, delivery_report
from broadcast.settings import BroadcastSettings
from devices.topics import Channel, topic
from ground.local import AmqttServer, MosquittoServer, PostgresCluster
from ground.principal import SYSTEM
from ground.settings import parse_mqtt_url
from simulators.commands import NEVER_ACK, OFFLINE, Behaviour, late_ack
from simulators.device import SimDevice
from simulators.fleet import SimulatedFleet
from simulators.speaker import PlayTiming
from tests.broadcast.registry import county_of, register_speakers
from tests.conftest import create_database
from tests.ingest.conftest import wait_until
from tests.simulators.observer import Observer
from village.processes import broadcast_daemon
from village.schema import migrate
from village.settings import Settings

FAST = PlayTiming(base_s=0.2, seconds_per_char=0.0)


def settings_for(database_url: str, broker: MosquittoServer | AmqttServer, prefix: str,
                 retry_interval_s: float = 1.0) -> Settings:
    return Settings(database_url=database_url, mqtt_url=broker.url, topic_prefix=prefix,
                    broadcast=BroadcastSettings(client_id=f"broadcast-{prefix}",
                                                retry_interval_s=retry_interval_s,
                                                sweep_interval_s=0.2))


@contextmanager
def daemon(settings: Settings, expect_speakers: int) -> Iterator[DaemonHandle]:
    """A running daemon that has heard the retained status of `expect_speakers` speakers."""
    handle = broadcast_daemon(settings).start()
    try:
        wait_until(lambda: handle.ready.is_set()
                   and len(handle.engine.presence) >= expect_speakers, 30, "daemon ready")
        yield handle
    finally:
        handle.stop()


def fleet_of(rows: list[tuple[str, str, str]], broker: MosquittoServer | AmqttServer, prefix: str,
             behaviours: dict[str, Behaviour], timing: PlayTiming = FAST) -> SimulatedFleet:
    devices = [SimDevice(d, "speaker", village=v, township=t) for d, t, v in rows]
    return SimulatedFleet(parse_mqtt_url(broker.url), prefix, devices, behaviours=behaviours,
                          timing=timing, intervals_s={"speaker": 3600})


def report_of(database_url: str, broadcast_id: str) -> Report:
    with psycopg.connect(database_url) as conn:
        return delivery_report(conn, broadcast_id, SYSTEM, datetime.now(UTC))


def broadcast(database_url: str, request: BroadcastRequest) -> str:
    with psycopg.connect(database_url) as conn:
        return create_broadcast(conn, request, SYSTEM, datetime.now(UTC))


def counts_become(database_url: str, broadcast_id: str, counts: dict[str, int],
                  timeout_s: float) -> Report:
    last: list[Report] = []

    def check() -> bool:
        last[:] = [report_of(database_url, broadcast_id)]
        return last[0].counts == counts

    try:
        wait_until(check, timeout_s, f"counts {counts}")
    except AssertionError as exc:
        raise AssertionError(f"counts are {last[0].counts}, not {counts}") from exc
    return last[0]


@pytest.mark.slow
def test_a_county_wide_emergency_to_400_speakers(
        database_url: str, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    rows = county_of(400)
    ids = [d for d, _, _ in rows]
    offline, silent = ids[:20], ids[20:30]
    register_speakers(database_url, rows)
    behaviours = {d: OFFLINE for d in offline} | {d: NEVER_ACK for d in silent}
    with fleet_of(rows, mosquitto, topic_prefix, behaviours) as fleet, \
            daemon(settings_for(database_url, mosquitto, topic_prefix), 400) as handle:
        request = BroadcastRequest(scope=Scope.county(), text="山洪预警，请立即转移。",
                                   priority="emergency", volume_pct=100, expires_in_s=20)
        b = broadcast(database_url, request)
        report = counts_become(database_url, b, {"done": 370, "sent": 10, "offline": 20}, 30)
        assert (report.speakers, report.confirmed) == (400, 370)
        assert [(u["device_id"], u["state"]) for u in report.unconfirmed] == sorted(
            [(d, "offline") for d in offline] + [(d, "sent") for d in silent])

        fleet.bring_online(offline)
        report = counts_become(database_url, b, {"done": 390, "sent": 10}, 15)
        assert report.expires_at > datetime.now(UTC), "the offline ones got it before expiry"
        assert all(fleet.speaker_log(d).started == [b] for d in offline)

        report = counts_become(database_url, b, {"done": 390, "no_answer": 10}, 25)
        assert [u["device_id"] for u in report.unconfirmed] == silent
        for unanswered in report.unconfirmed:
            log = fleet.speaker_log(unanswered["device_id"])
            # Retried with the same id until expiry, and played once.
            assert unanswered["attempts"] >= 5
            assert log.started == [b] and log.duplicates == [b] * (unanswered["attempts"] - 1)
    # The daemon's metrics counted each committed change by the state it entered.
    changes = handle.metrics.registry.get_sample_value
    assert changes("village_broadcast_delivery_changes_total", {"state": "done"}) == 390
    assert changes("village_broadcast_delivery_changes_total", {"state": "offline"}) == 20
    assert changes("village_broadcast_delivery_changes_total", {"state": "no_answer"}) == 10
    assert (changes("village_broadcast_messages_handled_total", {}) or 0) >= 390


def test_a_county_broadcast_over_the_embedded_mqtt_3_1_1_broker(
        database_url: str, amqtt: AmqttServer, topic_prefix: str) -> None:
    # `village up` falls back on amqtt where Mosquitto is missing: no shared subscription
    # and no receive maximum there, and delivery must still be confirmed speaker by speaker.
    rows = county_of(30)
    register_speakers(database_url, rows)
    offline = [rows[0][0]]
    with fleet_of(rows, amqtt, topic_prefix, {offline[0]: OFFLINE}) as fleet, \
            daemon(settings_for(database_url, amqtt, topic_prefix), 30):
        request = BroadcastRequest(scope=Scope.county(), text="明早停水。", priority="normal",
                                   volume_pct=80, expires_in_s=60)
        b = broadcast(database_url, request)
        counts_become(database_url, b, {"done": 29, "offline": 1}, 30)
        fleet.bring_online(offline)
        counts_become(database_url, b, {"done": 30}, 30)
        assert all(fleet.speaker_log(d).started == [b] for d, _, _ in rows)


def test_an_emergency_preempts_a_normal_one_and_holds_back_the_next(
        database_url: str, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    rows = [("spk-1", "East", "Apple"), ("spk-2", "East", "Apple"), ("spk-3", "East", "Birch")]
    register_speakers(database_url, rows)
    slow = PlayTiming(base_s=60, seconds_per_char=0.0)
    with fleet_of(rows, mosquitto, topic_prefix, {}, timing=slow) as fleet, \
            daemon(settings_for(database_url, mosquitto, topic_prefix), 3):
        everyone = Scope.of_township("East")
        first = broadcast(database_url, BroadcastRequest(scope=everyone, text="村委会通知"))
        counts_become(database_url, first, {"accepted": 3}, 10)

        emergency = broadcast(database_url, BroadcastRequest(
            scope=Scope.of_village("East", "Apple"), text="停水通知", priority="emergency"))
        counts_become(database_url, emergency, {"accepted": 2}, 10)
        report = counts_become(database_url, first, {"failed": 2, "accepted": 1}, 10)
        assert {u["reason"] for u in report.unconfirmed} == {f"preempted by emergency {emergency}"}
        assert fleet.speaker_log("spk-1").preempted == [first]

        second = broadcast(database_url, BroadcastRequest(scope=everyone, text="第二条通知"))
        counts_become(database_url, second, {"held": 2, "accepted": 1}, 10)
        time.sleep(0.5)  # a sweep or two: still held, never sent
        assert report_of(database_url, second).counts == {"held": 2, "accepted": 1}
        assert second not in fleet.speaker_log("spk-1").rejected
        assert fleet.speaker_log("spk-1").started == [first, emergency]

        with psycopg.connect(database_url) as conn:
            cancel_broadcast(conn, emergency, SYSTEM, datetime.now(UTC))
        counts_become(database_url, second, {"accepted": 3}, 10)  # released
        log = fleet.speaker_log("spk-1")
        assert log.stopped == [emergency] and log.started == [first, emergency, second]
        assert report_of(database_url, emergency).counts == {"cancelled": 2}


def test_bad_acks_are_dead_lettered_and_the_daemon_keeps_going(
        database_url: str, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    rows = [("spk-1", "East", "Apple")]
    register_speakers(database_url, rows)
    with fleet_of(rows, mosquitto, topic_prefix, {}) as fleet, \
            daemon(settings_for(database_url, mosquitto, topic_prefix), 1), \
            Observer(mosquitto.url, f"{topic_prefix}/none") as raw:
        ack_topic = topic(topic_prefix, "spk-1", Channel.COMMAND_ACK)
        raw.publish(ack_topic, b"{not json")
        raw.publish(ack_topic, b'{"id": "x", "result": "maybe"}')
        b = broadcast(database_url, BroadcastRequest(scope=Scope.of_speakers("spk-1"), text="hi"))
        counts_become(database_url, b, {"done": 1}, 10)
        assert fleet.speaker_log("spk-1").finished == [b]
    with psycopg.connect(database_url) as conn:
        letters = conn.execute("SELECT topic, device_id, reason FROM dead_letters ORDER BY id")
        assert letters.fetchall() == [(ack_topic, "spk-1", "invalid_json"),
                                      (ack_topic, "spk-1", "bad_ack")]


def test_a_scheduled_broadcast_fires_after_a_restart(
        database_url: str, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    rows = [("spk-1", "East", "Apple"), ("spk-2", "East", "Apple")]
    register_speakers(database_url, rows)
    settings = settings_for(database_url, mosquitto, topic_prefix)
    with fleet_of(rows, mosquitto, topic_prefix, {}) as fleet:
        with daemon(settings, 2):
            with psycopg.connect(database_url) as conn:
                due = datetime.now(UTC) + timedelta(seconds=3)
                create_schedule(conn, BroadcastRequest(scope=Scope.of_village("East", "Apple"),
                                                       text="早间新闻", expires_in_s=300),
                                SYSTEM, datetime.now(UTC), name="news", at=due)
        # The service is down when the schedule comes due.
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM broadcasts").fetchone() == (0,)
        with daemon(settings, 2):
            b = wait_until(lambda: _last_broadcast(database_url), 10, "the schedule to fire")
            assert b is not None
            counts_become(database_url, b, {"done": 2}, 10)
        assert fleet.speaker_log("spk-2").finished == [b]
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM broadcasts").fetchone() == (1,)


def _last_broadcast(database_url: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT last_broadcast_id FROM broadcast_schedules").fetchone()
        return row[0] if row else None


def test_acks_sent_while_the_daemon_is_down_are_applied_when_it_returns(
        database_url: str, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    rows = [("spk-1", "East", "Apple"), ("spk-2", "East", "Apple")]
    register_speakers(database_url, rows)
    settings = settings_for(database_url, mosquitto, topic_prefix, retry_interval_s=60)
    slow_to_answer = {d: late_ack(1.5) for d, _, _ in rows}
    with fleet_of(rows, mosquitto, topic_prefix, slow_to_answer) as fleet:
        with daemon(settings, 2):
            b = broadcast(database_url, BroadcastRequest(
                scope=Scope.of_village("East", "Apple"), text="hi", priority="alert"))
            counts_become(database_url, b, {"sent": 2}, 10)
        wait_until(lambda: all(fleet.speaker_log(d).finished == [b] for d, _, _ in rows), 10,
                   "the speakers to play")
        time.sleep(2.0)  # their late acks go to the broker while nobody listens
        assert report_of(database_url, b).counts == {"sent": 2}
        with daemon(settings, 2):
            counts_become(database_url, b, {"done": 2}, 10)


@pytest.mark.slow
def test_acks_that_arrive_while_the_database_is_down_are_kept_until_it_returns(
        private_postgres: PostgresCluster, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    database_url = create_database(private_postgres.admin_url, "village")
    migrate(database_url, timedelta(days=30))
    rows = [("spk-1", "East", "Apple"), ("spk-2", "East", "Apple")]
    register_speakers(database_url, rows)
    settings = settings_for(database_url, mosquitto, topic_prefix, retry_interval_s=60)
    with fleet_of(rows, mosquitto, topic_prefix, {d: late_ack(2.0) for d, _, _ in rows}), \
            daemon(settings, 2):
        b = broadcast(database_url, BroadcastRequest(
            scope=Scope.of_village("East", "Apple"), text="hi", priority="alert"))
        counts_become(database_url, b, {"sent": 2}, 10)
        private_postgres.stop("immediate")
        time.sleep(3.0)  # the acks arrive now, with nowhere to go
        private_postgres.start()
        counts_become(database_url, b, {"done": 2}, 20)
