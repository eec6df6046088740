"""Nothing is lost or doubled when the worker is killed, or PostgreSQL or the broker restart."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from devices.topics import Channel, topic
from ground.local import AmqttServer, MosquittoServer, PostgresCluster
from tests.conftest import create_database
from tests.ingest.conftest import (
    Publisher,
    ingest_settings,
    register,
    running_worker,
    scalar,
    start_ingest_process,
    wait_until,
)
from village.schema import migrate

DEVICES = [f"wm-{n:03d}" for n in range(20)]
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def stream(mqtt_url: str, prefix: str, start: int, count: int) -> None:
    """Publish `count` one-reading messages, numbered from `start`, each a distinct reading."""
    pub = Publisher(mqtt_url)
    for n in range(start, start + count):
        device = DEVICES[n % len(DEVICES)]
        pub.publish(topic(prefix, device, Channel.TELEMETRY),
                    {"ts": (BASE + timedelta(seconds=n)).isoformat(), "total_m3": n})
    pub.close()


def readings(database_url: str) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM readings"))


def assert_each_reading_once(database_url: str, total: int) -> None:
    """Every published reading is there, exactly once, with its own value."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT value), min(value), max(value) FROM readings"
        ).fetchone()
        wrong = conn.execute(
            "SELECT count(*) FROM readings WHERE ts <> %s + make_interval(secs => value)",
            (BASE,),
        ).fetchone()
    assert row == (total, total, 0, total - 1)
    assert wrong == (0,)


def kill_mid_stream_then_restart(
    database_url: str, mqtt_url: str, prefix: str, log: Path,
    kill: Callable[[subprocess.Popen[bytes]], None],
) -> None:
    """Stream 20,000 readings through a `village ingest` process, `kill` it (or part of it)
    with thousands in flight, restart it, and check each reading is stored exactly once."""
    register(database_url, [(device, "water_meter") for device in DEVICES])
    total = 20_000
    worker = start_ingest_process(database_url, mqtt_url, prefix, "ingest-kill", log)
    try:
        # Until the process has subscribed, a probe reaches nobody; resending it is harmless.
        def probe() -> bool:
            stream(mqtt_url, prefix, 0, 1)
            return readings(database_url) == 1

        wait_until(probe, what="the first worker to store")
        publisher = threading.Thread(target=stream, args=(mqtt_url, prefix, 1, total - 1))
        publisher.start()
        wait_until(lambda: readings(database_url) > 3000, what="the stream to be under way")
        kill(worker)
        stored_at_kill = readings(database_url)
        publisher.join(60)
        assert stored_at_kill < total, "the worker finished before it was killed"
        worker = start_ingest_process(database_url, mqtt_url, prefix, "ingest-kill", log)
        wait_until(lambda: readings(database_url) >= total, timeout_s=60,
                   what="the restarted worker to catch up")
    finally:
        worker.terminate()
        worker.wait(40)
    assert worker.returncode == 0, log.read_text()[-2000:]
    assert_each_reading_once(database_url, total)


@pytest.mark.slow
def test_kill_9_with_thousands_in_flight_then_restart_stores_each_reading_once(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    def kill_9(worker: subprocess.Popen[bytes]) -> None:
        worker.kill()
        worker.wait(10)

    kill_mid_stream_then_restart(database_url, mosquitto.url, topic_prefix,
                                 tmp_path / "ingest.log", kill_9)


@pytest.mark.slow
def test_a_killed_committer_stops_the_worker_non_zero_and_a_restart_stores_each_reading_once(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    log = tmp_path / "ingest.log"

    def kill_9_the_committer(worker: subprocess.Popen[bytes]) -> None:
        # The committer is the worker process's only child.
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        assert len(children) == 1, children
        os.kill(int(children[0]), signal.SIGKILL)
        assert worker.wait(60) != 0, "a worker whose committer died must not exit 0"
        assert "the committer process died" in log.read_text()

    kill_mid_stream_then_restart(database_url, mosquitto.url, topic_prefix, log,
                                 kill_9_the_committer)


@pytest.fixture
def cluster_database(private_postgres: PostgresCluster) -> Iterator[str]:
    """A migrated database on a private cluster that the test may restart."""
    name = "village_" + uuid.uuid4().hex[:8]
    url = create_database(private_postgres.admin_url, name)
    migrate(url, timedelta(days=730))
    yield url


@pytest.mark.slow
@pytest.mark.parametrize(("broker_kind", "total", "max_in_flight"),
                         [("mosquitto", 15_000, 500), ("amqtt", 3_000, 100)])
def test_postgres_restart_mid_stream_loses_nothing_and_the_worker_recovers(
    cluster_database: str, private_postgres: PostgresCluster, topic_prefix: str, tmp_path: Path,
    broker_kind: str, total: int, max_in_flight: int,
) -> None:
    # Over MQTT v5 (Mosquitto) the receive maximum bounds what the worker holds. amqtt, the
    # embedded fallback, speaks 3.1.1 only: there the worker's network thread stops reading
    # while it holds that many (in its hand-off or with its committer).
    server = MosquittoServer if broker_kind == "mosquitto" else AmqttServer
    broker = server(data_dir=tmp_path / broker_kind).start()
    try:
        register(cluster_database, [(device, "water_meter") for device in DEVICES])
        settings = ingest_settings(cluster_database, broker.url, topic_prefix,
                                   max_in_flight=max_in_flight)
        with running_worker(settings) as worker:
            publisher = threading.Thread(target=stream,
                                         args=(broker.url, topic_prefix, 0, total))
            publisher.start()
            wait_until(lambda: readings(cluster_database) > total // 10,
                       what="the stream to be under way")
            private_postgres.stop("fast")
            wait_until(lambda: worker.stats.db_errors > 0, what="the worker to notice")
            publisher.join(60)
            # Everything is published and the database is down: the worker holds a bounded
            # number unacknowledged; the rest waits at the broker. Mosquitto 2.0.11 lets a
            # burst overshoot the receive maximum while acknowledgements and sends
            # interleave (measured: up to 8x for a maximum of 100, transiently; see
            # docs/ingest.md); over 3.1.1 the worker's own hold allows the limit, and the
            # message in the network thread's hand. So the check is that the flow stopped,
            # far short of everything, and over 3.1.1 at the limit.
            held = worker.subscriber.received - worker.stats.acked
            assert 0 < held <= max_in_flight * (4 if broker_kind == "mosquitto" else 1)
            assert worker.stats.messages + held < total
            private_postgres.start()
            wait_until(lambda: readings(cluster_database) >= total, timeout_s=60,
                       what="the worker to recover by itself")
            assert worker.stats.database_ok
        assert_each_reading_once(cluster_database, total)
    finally:
        broker.stop()


@pytest.mark.slow
def test_broker_restart_mid_stream_loses_nothing_and_the_worker_reconnects(
    database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    broker = MosquittoServer(data_dir=tmp_path / "broker").start()
    try:
        register(database_url, [(device, "water_meter") for device in DEVICES])
        half = 10_000
        settings = ingest_settings(database_url, broker.url, topic_prefix)
        with running_worker(settings):
            pass  # the session and its subscriptions now wait at the broker
        stream(broker.url, topic_prefix, 0, half)  # queued for the absent worker
        with running_worker(settings) as worker:
            wait_until(lambda: readings(database_url) > 0, what="the backlog to start flowing")
            broker.stop()  # graceful: the broker saves queued messages and sessions
            in_flight = half - readings(database_url)
            broker.start()
            wait_until(lambda: worker.subscriber.connects >= 2, what="the worker to reconnect")
            stream(broker.url, topic_prefix, half, half)
            wait_until(lambda: readings(database_url) >= 2 * half, timeout_s=60,
                       what="every reading after the restart")
        assert in_flight > 0, "the broker restarted after everything was stored"
        assert_each_reading_once(database_url, 2 * half)
    finally:
        broker.kill()


def test_two_workers_on_one_shared_subscription_split_the_load(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    register(database_url, [(device, "water_meter") for device in DEVICES])
    total = 10_000
    group = "g" + uuid.uuid4().hex[:6]
    first = ingest_settings(database_url, mosquitto.url, topic_prefix, share_group=group)
    second = ingest_settings(database_url, mosquitto.url, topic_prefix, share_group=group)
    with running_worker(first) as one, running_worker(second) as two:
        stream(mosquitto.url, topic_prefix, 0, total)
        wait_until(lambda: readings(database_url) >= total, what="every reading")
        # Exactly one of them keeps the rollups and retention (an advisory lock decides).
        wait_until(lambda: one.maintenance.holds_lock or two.maintenance.holds_lock,
                   what="a maintainer")
        assert one.maintenance.holds_lock != two.maintenance.holds_lock
    assert one.stats.messages > total / 10 and two.stats.messages > total / 10
    assert one.stats.messages + two.stats.messages == total
    assert one.stats.duplicates + two.stats.duplicates == 0
    assert_each_reading_once(database_url, total)
