"""Benchmark: an emergency broadcast to N simulated speakers, send-to-accepted latency.

Starts a private Mosquitto, a fresh migrated database on the local PostgreSQL, N simulated
speakers (one MQTT connection each, all online) and the delivery daemon, then sends one
county-wide emergency and waits until every speaker has accepted it. Prints, per N:

- send-to-accepted per speaker (`accepted_at - first_sent_at`, both stamped by the daemon:
  the cycle's time before it publishes, and the ack's arrival), p50, p99 and max;
- from the call to `create_broadcast` (recording included) to the first publish, and to
  the last speaker accepted (target: under 10 s at 4,000);
- peak memory of this process (the daemon; the speakers run in a child process) and the
  load average.

    .venv/bin/python bench/broadcast_latency.py [N ...]      (default: 400 4000)

Not part of the test suite. The machine is shared: read the figures with the load.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np
import psycopg
from common import wait_until

from broadcast.model import BroadcastRequest, Scope
from broadcast.service import create_broadcast
from broadcast.settings import BroadcastSettings
from ground.local import MosquittoServer
from ground.principal import SYSTEM
from ground.settings import parse_mqtt_url
from simulators.device import SimDevice
from simulators.fleet import SimulatedFleet
from simulators.speaker import PlayTiming
from village.processes import broadcast_daemon
from village.schema import migrate
from village.settings import Settings

ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def _database(name: str, create: bool) -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _fleet(broker_url: str, prefix: str, rows: list[tuple[str, str, str]],
           ready: Event, stop: Event) -> None:
    """The speakers, in a process of their own (paho's select() cannot watch fds past 1024)."""
    devices = [SimDevice(d, "speaker", village=v, township=t) for d, t, v in rows]
    # Plays last long, so every speaker stays `accepted` while we measure.
    with SimulatedFleet(parse_mqtt_url(broker_url), prefix, devices,
                        timing=PlayTiming(base_s=600), intervals_s={"speaker": 3600}):
        ready.set()
        stop.wait()


def run(count: int, workdir: Path) -> None:
    """One round: `count` speakers, one emergency, figures printed."""
    name = f"village_bench_{uuid.uuid4().hex[:8]}"
    url = _database(name, create=True)
    broker = MosquittoServer(data_dir=workdir / f"mosquitto-{count}").start()
    try:
        migrate(url, timedelta(days=730))
        rows = [(f"spk-{n:05d}", f"T{n % 3}", f"V{n % 40}") for n in range(count)]
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (device_id, kind, township, village)"
                            " VALUES (%s, 'speaker', %s, %s)", rows)
        prefix = "b" + uuid.uuid4().hex[:8]
        settings = Settings(database_url=url, mqtt_url=broker.url, topic_prefix=prefix,
                            broadcast=BroadcastSettings(client_id=f"bench-{prefix}"))
        started = time.monotonic()
        context = multiprocessing.get_context("spawn")
        ready, stop = context.Event(), context.Event()
        fleet = context.Process(target=_fleet, args=(broker.url, prefix, rows, ready, stop))
        fleet.start()
        try:
            if not ready.wait(300):
                raise TimeoutError("the simulated speakers did not all connect")
            fleet_s = time.monotonic() - started
            handle = broadcast_daemon(settings).start()
            try:
                wait_until(lambda: handle.ready.is_set() and len(handle.engine.presence) >= count,
                      120, "the daemon to hear every speaker's status")
                request = BroadcastRequest(scope=Scope.county(), text="山洪预警，请立即转移。",
                                           priority="emergency", volume_pct=100,
                                           expires_in_s=600)
                requested = datetime.now(UTC)
                with psycopg.connect(url) as conn:
                    broadcast_id = create_broadcast(conn, request, SYSTEM, requested)
                with psycopg.connect(url, autocommit=True) as conn:
                    wait_until(lambda: conn.execute(
                        "SELECT count(*) = %s FROM broadcast_deliveries WHERE broadcast_id = %s"
                        " AND state = 'accepted'", (count, broadcast_id)).fetchone()[0],  # type: ignore[index]
                        120, "every speaker to accept")
                    timings = conn.execute(
                        "SELECT extract(epoch FROM accepted_at - first_sent_at),"
                        " extract(epoch FROM first_sent_at - %s),"
                        " extract(epoch FROM accepted_at - %s), attempts"
                        " FROM broadcast_deliveries WHERE broadcast_id = %s",
                        (requested, requested, broadcast_id)).fetchall()
            finally:
                handle.stop()
        finally:
            stop.set()
            fleet.join(60)
        latency = np.array([float(t[0]) for t in timings]) * 1000
        first_publish = min(float(t[1]) for t in timings)
        all_accepted = max(float(t[2]) for t in timings)
        retried = sum(1 for t in timings if t[3] > 1)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the daemon
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{count} speakers (emergency, all online; fleet connected in {fleet_s:.1f} s)")
        print(f"  send-to-accepted per speaker: p50 {np.percentile(latency, 50):.0f} ms,"
              f" p99 {np.percentile(latency, 99):.0f} ms, max {latency.max():.0f} ms")
        print(f"  request to first publish: {first_publish * 1000:.0f} ms;"
              f" request to every speaker accepted: {all_accepted:.2f} s"
              f" (target < 10 s); retried: {retried}")
        print(f"  peak memory of the daemon's process: {peak_mb:.0f} MiB; load average: {load}",
              flush=True)
    finally:
        broker.kill()
        _database(name, create=False)


def main() -> None:
    """Run the rounds named on the command line (default 400 and 4,000 speakers)."""
    counts = [int(arg) for arg in sys.argv[1:]] or [400, 4000]
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())};"
          f" {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-broadcast-") as workdir:
        for count in counts:
            run(count, Path(workdir))


if __name__ == "__main__":
    main()
