"""Benchmark: checking a device command's targets for a village and for the county's 15,000 meters.

Over the API benchmark's year of data (`api_latency.fill`: 15,000 meters, daily register and
weekly battery readings) plus 30 days of daily `valve_open` readings per meter, times
`command_store.targets` (the devices a selection names, each with whether it has a valve)
and `check_command` (what a confirmation page runs before sending `set_valve`), for one
village (100 meters) and the whole county.

Run: `.venv/bin/python bench/command_targets.py [--repeat 30] [--keep | --database URL]`.
Not a test.
Uses a scratch database on TEST_DATABASE_ADMIN_URL (default the local server), dropped after.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from api_latency import METERS, fill
from common import add_database_options, load, measured_database

from broadcast import command_store
from broadcast.command_service import CommandRequest, check_command
from ground.principal import SYSTEM

VALVE_DAYS = 30
SELECTIONS = {"village": {"kind": "water_meter", "village": "镇2村17"},
              "county": {"kind": "water_meter"}}


def add_valves(url: str) -> int:
    """A daily `valve_open` reading per meter for the last VALVE_DAYS, merged as an import
    is; how many readings."""
    with psycopg.connect(url, autocommit=True) as conn:
        added = conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " SELECT device_id, 'valve_open', date_trunc('day', now()) - n * INTERVAL '1 day', 1"
            " FROM devices, generate_series(0, %s - 1) n", (VALVE_DAYS,)).rowcount
        conn.execute("SELECT village_merge_latest(now() - INTERVAL '1 hour')")
        conn.execute("VACUUM ANALYZE")
    return added


def measure(name: str, call: Callable[[], int], repeat: int) -> None:
    """Time `repeat` calls after a warm-up (which says how many meters); print p50 and max."""
    found = call()
    times = sorted(1000 * t for t in timeit.repeat(call, number=1, repeat=repeat))
    print(f"{name} ({found} meters): n={repeat} p50 {statistics.median(times):.1f} ms,"
          f" max {times[-1]:.1f} ms; {load()}", flush=True)


def measure_checks(url: str, repeat: int) -> None:
    """Time the targets and the whole check of each selection."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name, filters in SELECTIONS.items():
            measure(f"targets, {name}",
                    lambda f=filters: len(command_store.targets(conn, None, f)[0]), repeat)
            request = CommandRequest("set_valve", "bench", {"open": False}, filters=filters)
            measure(f"check_command set_valve, {name}",
                    lambda r=request: len(check_command(conn, SYSTEM, r, datetime.now(UTC))[1]),
                    repeat)


def main() -> None:
    """Fill a scratch database and time the checks."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    add_database_options(parser)
    args = parser.parse_args()
    with measured_database(args, "village_bench_targets", lambda url: (
            f"filled {METERS} meters with {fill(url)['readings'] + add_valves(url):,} readings"
    )) as url:
        measure_checks(url, args.repeat)


if __name__ == "__main__":
    main()
