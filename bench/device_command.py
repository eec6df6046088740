"""Benchmark: `set_valve open=false` to N simulated water meters, until every one has answered.

Starts a private Mosquitto, a fresh migrated database, N simulated meters (one MQTT
connection each, in a child process) and the delivery daemon (in this process), then sends
one command to every meter of the county and waits until each delivery is confirmed
(simulated meters answer `done`, which confirms as `accepted` would). Prints the time from
the request to the first publish and to the last meter confirmed, per-meter
send-to-confirmed percentiles, and this process's peak memory (the daemon's).

    .venv/bin/python bench/device_command.py [N ...]      (default: 15000)

Not part of the test suite. The machine is shared: read the figures with the load.
"""

from __future__ import annotations

import multiprocessing
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
from common import load, wait_until

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcast.command_service import CommandRequest, send_command  # noqa: E402
from broadcast.settings import BroadcastSettings  # noqa: E402
from ground.local import MosquittoServer  # noqa: E402
from ground.principal import SYSTEM  # noqa: E402
from ground.settings import parse_mqtt_url  # noqa: E402
from simulators.device import SimDevice  # noqa: E402
from simulators.fleet import SimulatedFleet  # noqa: E402
from tests.conftest import ADMIN_URL, create_database, drop_database  # noqa: E402
from village.processes import broadcast_daemon  # noqa: E402
from village.schema import migrate  # noqa: E402
from village.settings import Settings  # noqa: E402


def _fleet(broker_url: str, prefix: str, ids: list[str], ready: Event, stop: Event) -> None:
    """The meters, in a process of their own."""
    devices = [SimDevice(d, "water_meter", village=f"V{n % 40}", township=f"T{n % 3}")
               for n, d in enumerate(ids)]
    fleet = SimulatedFleet(parse_mqtt_url(broker_url), prefix, devices, nb_iot_share=0,
                           intervals_s={"water_meter": 3600})
    fleet.start(timeout_s=1200)  # thousands of CONNECTs take a while on a loaded machine
    try:
        ready.set()
        stop.wait()
    finally:
        fleet.stop()


def run(count: int, workdir: Path) -> None:
    """One round: `count` meters, one command, figures printed."""
    name = f"village_bench_cmd_{uuid.uuid4().hex[:8]}"
    url = create_database(ADMIN_URL, name)
    broker = MosquittoServer(data_dir=workdir / f"mosquitto-{count}").start()
    stop = None
    fleet = None
    try:
        migrate(url, timedelta(days=730))
        ids = [f"wm-{n:06d}" for n in range(count)]
        now = datetime.now(UTC)
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (device_id, kind, township, village)"
                            " VALUES (%s, 'water_meter', %s, %s)",
                            [(d, f"T{n % 3}", f"V{n % 40}") for n, d in enumerate(ids)])
            cur.executemany("INSERT INTO readings (device_id, metric, ts, value)"
                            " VALUES (%s, 'valve_open', %s, 1)", [(d, now) for d in ids])
            # Written without ingest: merged into latest_values as an import would be.
            cur.execute("SELECT village_merge_latest()")
        prefix = "c" + uuid.uuid4().hex[:8]
        settings = Settings(database_url=url, mqtt_url=broker.url, topic_prefix=prefix,
                            broadcast=BroadcastSettings(client_id=f"bench-{prefix}"))
        context = multiprocessing.get_context("spawn")
        ready, stop = context.Event(), context.Event()
        fleet = context.Process(target=_fleet, args=(broker.url, prefix, ids, ready, stop))
        started = time.monotonic()
        fleet.start()
        if not ready.wait(1300):
            raise TimeoutError("the simulated meters did not all connect")
        fleet_s = time.monotonic() - started
        handle = broadcast_daemon(settings).start()
        try:
            wait_until(lambda: handle.ready.is_set() and len(handle.commands.presence) >= count,
                   300, "every meter's status")
            requested = datetime.now(UTC)
            request = CommandRequest("set_valve", "bench: close every valve", {"open": False},
                                     filters={"kind": "water_meter"})
            with psycopg.connect(url) as conn:
                command_id = send_command(conn, SYSTEM, request, requested)
            recorded_s = (datetime.now(UTC) - requested).total_seconds()
            with psycopg.connect(url, autocommit=True) as conn:
                wait_until(lambda: conn.execute(
                    "SELECT count(*) = %s FROM device_command_deliveries WHERE command_id = %s"
                    " AND accepted_at IS NOT NULL", (count, command_id)).fetchone()[0],  # type: ignore[index]
                    600, "every meter to confirm")
                timings = conn.execute(
                    "SELECT extract(epoch FROM accepted_at - first_sent_at),"
                    " extract(epoch FROM first_sent_at - %s), extract(epoch FROM accepted_at - %s),"
                    " attempts FROM device_command_deliveries WHERE command_id = %s",
                    (requested, requested, command_id)).fetchall()
        finally:
            handle.stop()
        latency = np.array([float(t[0]) for t in timings]) * 1000
        print(f"{count} meters (all online; fleet connected in {fleet_s:.1f} s)")
        print(f"  command checked and recorded in {recorded_s:.2f} s; request to first publish"
              f" {min(float(t[1]) for t in timings):.2f} s; to every meter confirmed"
              f" {max(float(t[2]) for t in timings):.2f} s;"
              f" retried: {sum(1 for t in timings if t[3] > 1)}")
        print(f"  send-to-confirmed per meter: p50 {np.percentile(latency, 50):.0f} ms,"
              f" p99 {np.percentile(latency, 99):.0f} ms, max {latency.max():.0f} ms")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak memory of the daemon's process: {peak_mb:.0f} MiB  [{load()}]",
              flush=True)
    finally:
        if stop is not None:
            stop.set()
        if fleet is not None:
            fleet.join(120)
        broker.kill()
        drop_database(ADMIN_URL, name)


def main() -> None:
    """Run the rounds named on the command line (default 15,000 meters)."""
    counts = [int(arg) for arg in sys.argv[1:]] or [15_000]
    with tempfile.TemporaryDirectory(prefix="bench-command-") as workdir:
        for count in counts:
            run(count, Path(workdir))


if __name__ == "__main__":
    main()
