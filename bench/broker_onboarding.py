"""Benchmark: onboarding devices into a running Mosquitto with the dynamic security plugin.

Two ways in. File: `village broker-config --dynsec` writes the plugin's file for the whole
registry (`--held` devices), then the broker starts; measured is write + start until a
sample logs in. Live, into that running broker, through the access daemon:
- one device at a time (`--singles`): the time from its registration until it logs in;
- a bulk import (`--live` devices): the time until the daemon has applied every login and
  a sample of them (the last imported always among them) logs in, and meanwhile one more
  device, registered just after the import: its time until it logs in.
Mosquitto 2.0.x's plugin rewrites its whole file after every command (plugin.c, clients.c:
`dynsec__config_save` in each command's handler; the once-per-message save exists only on
upstream's develop branch), so a live change costs time in proportion to the logins held.

Run: `.venv/bin/python bench/broker_onboarding.py [--held 15000] [--live 1000]`. Not a test.
Uses a scratch database on TEST_DATABASE_ADMIN_URL (default the local server), dropped after.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
from common import load, peak_rss_mb, wait_until

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devices.access_settings import AccessSettings  # noqa: E402
from devices.access_sync import AccessDaemon  # noqa: E402
from devices.registry_csv import COLUMNS, DeviceRow  # noqa: E402
from devices.store import add_device, upsert_devices  # noqa: E402
from ground.local import MosquittoServer  # noqa: E402
from ground.settings import MqttEndpoint, parse_mqtt_url  # noqa: E402
from tests.registry.mqtt_session import Session  # noqa: E402
from village.commands.broker import write_broker_config  # noqa: E402
from village.schema import migrate  # noqa: E402

ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "sv"
SAMPLE = 200


def _meters(first: int, count: int) -> list[DeviceRow]:
    return [DeviceRow(f"wm-{n:07d}", "water_meter", f"村{n % 400}", township=f"镇{n % 3}")
            for n in range(first, first + count)]


def _import(conn: psycopg.Connection, rows: list[DeviceRow]) -> dict[str, str]:
    return dict(upsert_devices(conn, rows, COLUMNS, "bench", issue_secrets=True).secrets)


def _all_log_in(endpoint: MqttEndpoint, secrets: dict[str, str], timeout_s: float) -> int:
    """Wait until a sample of these devices (the last always among them) logs in; its size."""
    sample = random.Random(1).sample(sorted(secrets), min(SAMPLE, len(secrets)))
    sample += [max(secrets)] if secrets else []
    deadline = time.monotonic() + timeout_s
    for device_id in sample:
        while True:
            session = Session(endpoint, device_id, device_id, secrets[device_id]).connect()
            session.close()
            if session.connack == "Success":
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{device_id} cannot log in after {timeout_s} s")
            time.sleep(0.05)
    return len(sample)


def _one_device_logs_in(conn: psycopg.Connection, endpoint: MqttEndpoint, device_id: str,
                        timeout_s: float) -> float:
    """Register one device (as the API does); seconds until it logs in with its secret."""
    started = time.perf_counter()
    secret = add_device(conn, DeviceRow(device_id, "water_meter", "村0", township="镇0"), "bench")
    _all_log_in(endpoint, {device_id: secret}, timeout_s)
    return time.perf_counter() - started


def main() -> None:
    """Measure the live and the file way in."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--held", type=int, default=15_000, help="logins the broker holds first")
    parser.add_argument("--live", type=int, default=1_000, help="devices onboarded live")
    parser.add_argument("--singles", type=int, default=10, help="devices added one at a time")
    args = parser.parse_args()
    name = f"bench_onboarding_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    work = Path(tempfile.mkdtemp(prefix="onboarding-"))
    server = MosquittoServer(data_dir=work / "broker", acl_file=work / "conf" / "acl",
                             dynsec_file=work / "conf" / "dynamic-security.json")
    daemon: AccessDaemon | None = None
    try:
        migrate(url, retention=timedelta(days=730))
        with psycopg.connect(url, autocommit=True) as conn:
            held = _import(conn, _meters(0, args.held))
            started = time.perf_counter()
            write_broker_config(conn, work / "conf", PREFIX, parse_mqtt_url(server.url),
                                rotate_services=False, dynsec=True)
            written = time.perf_counter() - started
            server.start()
            endpoint = parse_mqtt_url(server.url)
            sampled = _all_log_in(endpoint, held, 120)
            file_s = time.perf_counter() - started
            print(f"file: {args.held} logins written in {written:.1f} s; broker started and a"
                  f" sample of {sampled} logged in after {file_s:.1f} s  [{load()}]")

            access_env = (work / "conf" / "access.env").read_text().splitlines()[-1]
            daemon = AccessDaemon.build(url, parse_mqtt_url(access_env.partition("=")[2]),
                                        PREFIX, AccessSettings())
            daemon.start()
            wait_until(lambda: daemon.sync.stats.reconciled_at is not None, 60, "reconciled")
            singles = sorted(_one_device_logs_in(conn, endpoint, f"wm-single{n}", 30)
                             for n in range(args.singles))
            print(f"one device at a time into a broker holding {args.held}: logs in after"
                  f" p50 {singles[len(singles) // 2]:.2f} s, max {singles[-1]:.2f} s"
                  f" ({args.singles} devices)  [{load()}]")

            started = time.perf_counter()
            fresh = _import(conn, _meters(args.held, args.live))
            imported = time.perf_counter() - started
            during = _one_device_logs_in(conn, endpoint, "wm-during", 60)
            while conn.execute("SELECT count(*) FROM broker_access_queue").fetchone() != (0,):
                time.sleep(0.1)
            applied = time.perf_counter() - started
            _all_log_in(endpoint, fresh, 60)
            live_s = time.perf_counter() - started
            per_command = daemon.sync.pacing.per_command_s or 0.0
            print(f"live: {args.live} devices into a broker holding {args.held + args.singles}:"
                  f" imported in {imported:.1f} s, every login applied after {applied:.1f} s"
                  f" ({args.live / applied:.1f} logins/s; the broker took"
                  f" {per_command * 1000:.0f} ms a command at the end, messages of"
                  f" {daemon.sync.pacing.size()}), sample logged in after {live_s:.1f} s;"
                  f" one device registered during it logged in after {during:.2f} s;"
                  f" broker peak RSS {peak_rss_mb(server.process.pid):.0f} MB"  # type: ignore[union-attr]
                  f"  [{load()}]")
    finally:
        if daemon is not None:
            daemon.stop()
        server.kill()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
