"""Alerting benchmark: the service's time pass (`tick_cycle`) over a registry in PostgreSQL.

    .venv/bin/python bench/alerting_tick_service.py [--devices 1000000]

What `village alerts run` does every `schedule_interval_s`, with the preset rules: read
the registry (cached, as columns), every device's presence as microsecond arrays and the
open alert states, judge stopped reporting and area outages over columns, store what
moved. A scratch database gets `--devices` devices (ten counties' mix, 30 townships of 20
villages), one in fifty silent beyond its kind's limit. Prints each pass: the first (the
registry read, the silent devices' alerts opened), one from the cache, one after a
registry reload; then the process's peak memory and the machine load. Not a test
(tests/alerting/test_columnar_service.py proves the pass equals the object evaluator).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import UTC, datetime, timedelta

import psycopg
from common import load, scratch_database

from alerting.cycles import Engine
from alerting.evaluate import RuleBook
from alerting.files import load_rules
from alerting.routing import build_routing
from alerting.tick import tick_cycle
from village.schema import migrate

# Ten counties' mix, as bench/alerting_time_pass.py: per 100 devices.
MIX = (("water_meter", 80), ("camera", 16), ("water_quality", 1), ("barn", 1), ("speaker", 2))


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
        # One in fifty silent for up to three days; a few never heard at all.
        conn.execute(
            "INSERT INTO device_presence (device_id, last_seen)"
            " SELECT d.device_id, now() - make_interval(secs => CASE WHEN random() < 0.02"
            "  THEN k.stale_after_s + random() * 3 * 86400 ELSE random() * 0.9 * k.stale_after_s END)"
            " FROM devices d JOIN device_kinds k USING (kind) WHERE random() > 0.001")
        conn.execute("VACUUM ANALYZE")


def timed_pass(conn: psycopg.Connection, engine: Engine, now: datetime, what: str,
               count: int) -> None:
    """One tick, its time and what it moved."""
    started = time.perf_counter()
    outcome = tick_cycle(conn, engine, now)
    elapsed = time.perf_counter() - started
    print(f"{what}: {count:,} devices in {elapsed:.2f} s, {len(outcome.transitions):,}"
          f" transitions; {load()}", flush=True)


def main() -> None:
    """Fill a scratch database, run the passes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000)
    count = parser.parse_args().devices
    print(f"before: {load()}", flush=True)
    with scratch_database(f"village_bench_tick_{os.getpid()}") as url:
        migrate(url, retention=timedelta(days=730))
        started = time.perf_counter()
        fill(url, count)
        print(f"filled {count:,} devices in {time.perf_counter() - started:.0f} s;"
              f" {load()}", flush=True)
        engine = Engine(RuleBook(load_rules([])), build_routing({}), {},
                        link=lambda alert_id, who, now: None, registry_refresh_s=3600)
        now = datetime.now(UTC)
        with psycopg.connect(url, autocommit=True) as conn:
            timed_pass(conn, engine, now, "first pass (registry read, alerts opened)",
                       count)
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak memory after the first pass (max RSS) {rss_mb:.0f} MB", flush=True)
            for second in (1, 2):
                timed_pass(conn, engine, now + timedelta(seconds=second),
                           "a pass from the cached registry", count)
            engine.cache.subjects_loaded = float("-inf")  # as after registry_refresh_s
            timed_pass(conn, engine, now + timedelta(seconds=3),
                       "a pass after a registry reload", count)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {rss_mb:.0f} MB; {load()}")


if __name__ == "__main__":
    main()
