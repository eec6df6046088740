"""Alerting benchmark: the service's time pass (`tick_cycle`) over a registry in PostgreSQL.

    .venv/bin/python bench/alerting_tick_service.py [--devices 1000000] [--passes 10]

What `village alerts run` does every `schedule_interval_s` (30 s), with the preset rules. A
scratch database gets `--devices` devices (ten counties' mix, 30 townships of 20 villages),
one in fifty silent beyond its kind's limit. The first pass reads the registry and every
device's presence and opens the silent devices' alerts; then `--passes` later passes, 30 s
apart, each after ingest's presence updates in those 30 s at real rates (meters every 15
minutes, the rest every minute: about 13% of the fleet, by one UPDATE outside the timing),
so each reads what changed; then one pass after registry changes (devices added, moved,
retired) and one that reads everything again (as every FULL_READ_S). Prints each pass,
the later passes' p50 and max, the process's peak memory and the machine load. Not a test
(tests/alerting/test_columnar_service.py proves the passes equal the object evaluator).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
from common import load, scratch_database

from alerting.cycles import Engine
from alerting.evaluate import RuleBook
from alerting.files import load_rules
from alerting.routing import build_routing
from alerting.tick import FULL_READ_S, tick_cycle
from village.schema import migrate

# Ten counties' mix, as bench/alerting_time_pass.py: per 100 devices.
MIX = (("water_meter", 80), ("camera", 16), ("water_quality", 1), ("barn", 1), ("speaker", 2))
# Report intervals (simulators/build.py): meters every 15 minutes, the rest every minute.
METER_EVERY_S, OTHERS_EVERY_S = 900, 60


def fill(url: str, count: int) -> None:
    """`count` devices and their presence: most heard within their kind's limit."""
    # The kind from i % 100 by the mix's cumulative shares (80 meters, then 16 cameras, ...).
    bounds = [sum(n for _, n in MIX[:k + 1]) for k in range(len(MIX))]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, kind, township, village, created_at)"
            " SELECT format('d-%%s', lpad(i::text, 7, '0')),"
            "  (%s::text[])[array_position(ARRAY(SELECT i %% 100 < b FROM unnest(%s::int[]) b),"
            "  true)], format('T%%s', i %% 30), format('V%%s', i %% 600),"
            "  now() - interval '30 days' FROM generate_series(0, %s - 1) i",
            ([kind for kind, _ in MIX], bounds, count))
        # One in fifty silent for up to three days; the others heard within their report
        # interval; a few never heard at all.
        conn.execute(
            "INSERT INTO device_presence (device_id, last_seen)"
            " SELECT d.device_id, now() - make_interval(secs => CASE WHEN random() < 0.02"
            "  THEN k.stale_after_s + random() * 3 * 86400"
            "  ELSE random() * CASE kind WHEN 'water_meter' THEN %s ELSE %s END END)"
            " FROM devices d JOIN device_kinds k USING (kind) WHERE random() > 0.001",
            (METER_EVERY_S, OTHERS_EVERY_S))
        conn.execute("VACUUM ANALYZE")


def heard(url: str, at: datetime) -> int:
    """Ingest's presence updates: every device due by `at` (not the silent ones) heard."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "UPDATE device_presence p SET last_seen = %s FROM devices d"
            " JOIN device_kinds k USING (kind) WHERE d.device_id = p.device_id"
            " AND p.last_seen BETWEEN %s - make_interval(secs => k.stale_after_s)"
            " AND %s - make_interval(secs => CASE kind WHEN 'water_meter' THEN %s ELSE %s END)",
            (at, at, at, METER_EVERY_S, OTHERS_EVERY_S)).rowcount


def registry_changes(url: str, count: int) -> None:
    """A few devices added, moved to another village, and retired."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, kind, township, village)"
            " SELECT format('n-%%s', i), 'camera', 'T1', 'V1' FROM generate_series(1, %s) i",
            (count,))
        conn.execute("UPDATE devices SET village = 'V7' WHERE device_id IN"
                     " (SELECT device_id FROM devices ORDER BY device_id LIMIT %s)", (count,))
        conn.execute("UPDATE devices SET lifecycle = 'retired' WHERE device_id IN"
                     " (SELECT device_id FROM devices WHERE device_id LIKE 'd-%%'"
                     " ORDER BY device_id DESC LIMIT %s)",
                     (count,))


def timed_pass(conn: psycopg.Connection, engine: Engine, now: datetime, what: str) -> float:
    """One tick, its time and what it moved."""
    started, cpu = time.perf_counter(), time.process_time()
    outcome = tick_cycle(conn, engine, now)
    elapsed = time.perf_counter() - started
    print(f"{what}: {elapsed:.2f} s ({time.process_time() - cpu:.2f} s CPU in this process),"
          f" {len(outcome.transitions):,} transitions; {load()}", flush=True)
    return elapsed


def main() -> None:
    """Fill a scratch database, run the passes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=10)
    args = parser.parse_args()
    count = args.devices
    print(f"before: {load()}", flush=True)
    with scratch_database(f"village_bench_tick_{os.getpid()}") as url:
        migrate(url, retention=timedelta(days=730))
        started = time.perf_counter()
        fill(url, count)
        print(f"filled {count:,} devices in {time.perf_counter() - started:.0f} s;"
              f" {load()}", flush=True)
        engine = Engine(RuleBook(load_rules([])), build_routing({}), {},
                        link=lambda alert_id, who, now: None)
        now = datetime.now(UTC)
        with psycopg.connect(url, autocommit=True) as conn:
            timed_pass(conn, engine, now, f"first pass ({count:,} devices: all read,"
                       " alerts opened)")
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak memory after the first pass (max RSS) {rss_mb:.0f} MB", flush=True)
            later = []
            for step in range(1, args.passes + 1):
                now += timedelta(seconds=30)
                share = heard(url, now) / count
                later.append(timed_pass(conn, engine, now, f"later pass {step}"
                                        f" ({share:.0%} heard since)"))
            print(f"later passes: p50 {statistics.median(later):.2f} s, max {max(later):.2f} s"
                  f" over {len(later)}", flush=True)
            now += timedelta(seconds=30)
            registry_changes(url, 100)
            timed_pass(conn, engine, now, "a pass after registry changes (100 devices added,"
                       " 100 moved, 100 retired)")
            now += timedelta(seconds=30)
            assert engine.cache.columns is not None
            engine.cache.columns = replace(engine.cache.columns, read_all_at=float("-inf"))
            timed_pass(conn, engine, now, "a pass reading everything again (as every"
                       f" {FULL_READ_S:.0f} s)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {rss_mb:.0f} MB; {load()}")


if __name__ == "__main__":
    main()
