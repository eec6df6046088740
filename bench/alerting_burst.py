"""Alerting benchmark: the streaming pass over the NB-IoT morning burst.

    .venv/bin/python bench/alerting_burst.py [--meters 10000]

A scratch database gets `--meters` water meters and their day (96 register readings
each) stored in one transaction, as a worker's batch of day uploads is; then the
streaming pass (`evaluate_cycle`, the presets) runs until it has read everything.
Prints each pass (rows, seconds), the readings judged per second, peak memory and the
load. Not a test (tests/alerting/test_reads.py proves the reads).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import UTC, datetime, timedelta

import psycopg
from common import load, scratch_database

from alerting import store
from alerting.cycles import Engine, evaluate_cycle
from alerting.evaluate import RuleBook
from alerting.files import load_rules
from alerting.routing import build_routing
from ground.runtime import collect_garbage_in_larger_steps
from village.schema import migrate

DAY_READINGS = 96


def fill(url: str, meters: int) -> None:
    """The meters, and each one's day of register readings in one transaction."""
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, kind, township, village, created_at)"
            " SELECT format('wm-%%s', i), 'water_meter', format('T%%s', i %% 30),"
            "  format('V%%s', i %% 600), now() - interval '30 days'"
            " FROM generate_series(1, %s) i", (meters,))
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " SELECT format('wm-%%s', i), 'total_m3', %s - make_interval(mins => 15 * k),"
            "  100 + i %% 500 + (%s - 1 - k) * 0.004"
            " FROM generate_series(1, %s) i, generate_series(0, %s - 1) k",
            (end, DAY_READINGS, meters, DAY_READINGS))
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    """Fill a scratch database, run the streaming passes until caught up, print figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=10_000)
    meters = parser.parse_args().meters
    collect_garbage_in_larger_steps()  # as the alerting service does
    print(f"before: {load()}", flush=True)
    with scratch_database(f"village_bench_burst_{os.getpid()}") as url:
        migrate(url, retention=timedelta(days=730))
        fill(url, meters)
        engine = Engine(RuleBook(load_rules([])), build_routing({}), {},
                        link=lambda alert_id, who, now: None, registry_refresh_s=3600)
        with psycopg.connect(url, autocommit=True) as conn:
            store.start_watermarks(conn, timedelta(hours=1))
            started, judged, passes = time.perf_counter(), 0, 0
            while True:
                began = time.perf_counter()
                rows = evaluate_cycle(conn, engine)
                passes += 1
                print(f"pass {passes}: {rows:,} readings in {time.perf_counter() - began:.2f} s",
                      flush=True)
                judged += rows
                if rows == 0:
                    break
            elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{judged:,} readings of {meters:,} meters judged in {elapsed:.1f} s:"
          f" {judged / elapsed:,.0f} readings/s; peak memory (max RSS) {rss_mb:.0f} MB;"
          f" {load()}", flush=True)


if __name__ == "__main__":
    main()
