"""Benchmark: API latency p50/p99 over a year of simulated data for 15,000 water meters.

Scenarios: latest values of all 15,000 meters, in one columns request
(`/telemetry/latest/columns`: the register, or every metric of the kind; gzip-packed or
not), against the goal of p99 under 200 ms, and paged (1,000 devices a page); a 30-day daily
consumption series for one village (a village cadre's token); a 30-day daily series of one
meter. The data is generated inside PostgreSQL (INSERT ... SELECT over generate_series) into
`readings` (monthly partitions prepared first), `readings_daily` and `latest_values`. The API runs as
`village api serve` in a child process; requests are sequential from this process.

Run: `.venv/bin/python bench/api_latency.py [--requests 200] [--keep | --database URL]`.
Not a test.
Uses a scratch database on TEST_DATABASE_ADMIN_URL (default the local server), dropped after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from common import api_server, load, peak_rss_mb, scratch_database

from ground.principal import SYSTEM, Place, Role
from village.api.tokens import create_token
from village.schema import migrate

TOWNSHIPS, VILLAGES_PER_TOWNSHIP, METERS_PER_VILLAGE = 3, 50, 100
METERS = TOWNSHIPS * VILLAGES_PER_TOWNSHIP * METERS_PER_VILLAGE  # 15,000
DAYS = 365


def fill(url: str) -> dict[str, float]:
    """Registry, a year of daily register readings and weekly battery readings, rollups."""
    timings = {}
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO devices (device_id, kind, township, village, grid)"
            " SELECT format('wm-%%s-%%s-%%s', t, v, m), 'water_meter', format('镇%%s', t),"
            "  format('镇%%s村%%s', t, v), format('%%s组', m %% 12)"
            " FROM generate_series(1, %s) t, generate_series(1, %s) v, generate_series(1, %s) m",
            (TOWNSHIPS, VILLAGES_PER_TOWNSHIP, METERS_PER_VILLAGE))
        conn.execute("SELECT village_ensure_partitions(now() - %s * INTERVAL '1 day' - INTERVAL"
                     " '1 month', now() + INTERVAL '1 month')", (DAYS,))
        # One register reading a day (an NB-IoT meter's daily upload), growing 0.2-0.4 m3/day.
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " SELECT d.device_id, 'total_m3', day, 100 + n * (0.2 + (h %% 10) * 0.02)"
            " FROM (SELECT device_id, abs(hashtext(device_id)) AS h FROM devices) d,"
            "  generate_series(0, %s - 1) n,"
            "  LATERAL (SELECT date_trunc('day', now()) - (%s - n) * INTERVAL '1 day'"
            "   + INTERVAL '18 hours' AS day) x", (DAYS, DAYS))
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value)"
            " SELECT device_id, 'battery_v', date_trunc('day', now()) - w * INTERVAL '7 days',"
            "  3.6 - w * 0.001 FROM devices, generate_series(0, %s / 7) w", (DAYS,))
        timings["raw_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO readings_daily SELECT device_id, metric,"
            " date_trunc('day', ts, 'Asia/Shanghai'), count(*), min(value), max(value),"
            " avg(value), (array_agg(value ORDER BY ts))[1], (array_agg(value ORDER BY ts DESC))[1]"
            " FROM readings GROUP BY 1, 2, 3")
        conn.execute("UPDATE rollup_watermarks SET refreshed_to = now()")
        # Rows written without ingest: merged as an import would (see docs/sql.md).
        conn.execute("SELECT village_merge_latest()")
        conn.execute("VACUUM ANALYZE")
        timings["rollup_and_vacuum_s"] = time.perf_counter() - started
        timings["readings"] = conn.execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]
    return timings


GOAL_P99_MS = 200  # a county's latest meter values through the API (issue 17)


def measure(name: str, call: Callable[[], object], count: int) -> float:
    """Time `count` calls after a warm-up; print p50, p99 and max, return p99 (ms). Calls
    raise on failure."""
    for _ in range(3):
        call()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{name}: n={count} p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms,"
          f" max {times[-1]:.1f} ms; {load()}", flush=True)
    return p99


def alternate(calls: dict[str, Callable[[], object]], rounds: int) -> None:
    """Time the calls in turn, `rounds` times each after a warm-up round, so that they all
    meet the same machine load; print each one's p50 and p99 and the ratio of the p50s."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(rounds + 1):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            if round_:
                times[name].append((time.perf_counter() - started) * 1000)
    p50s = {name: statistics.median(measured) for name, measured in times.items()}
    for name, measured in times.items():
        measured.sort()
        print(f"  {name}: n={rounds} p50 {p50s[name]:.1f} ms,"
              f" p99 {measured[min(rounds - 1, int(rounds * 0.99))]:.1f} ms", flush=True)
    slowest, fastest = max(p50s.values()), min(p50s.values())
    print(f"  ratio of the p50s {slowest / fastest:.1f}; {load()}", flush=True)


def cpu_s(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds (user and system) each of these processes has used, if it still runs."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def cpu_per_call(url: str, api_pid: int, name: str, call: Callable[[], object],
                 count: int) -> None:
    """Print the CPU time a call costs the API process and the database's server processes:
    unlike the wall time, it hardly depends on what else the machine runs."""
    with psycopg.connect(url, autocommit=True) as conn:
        def servers() -> set[int]:
            return {pid for pid, in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()")}

        call()
        before = cpu_s({api_pid} | servers())
        for _ in range(count):
            call()
        after = cpu_s({api_pid} | servers())
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    api = spent.pop(api_pid, 0.0)
    print(f"  CPU per request, {name}: API {api / count * 1000:.0f} ms,"
          f" PostgreSQL {sum(spent.values()) / count * 1000:.0f} ms (n={count}); {load()}",
          flush=True)


def main() -> None:
    """Fill a scratch database, serve the API from it, and time the scenarios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--database", help="a database a --keep run filled: measure only")
    parser.add_argument("--versus", metavar="CHECKOUT",
                        help="with --database: serve this checkout's code beside this one's"
                             " and time county sweeps on both, alternating")
    args = parser.parse_args()
    if args.database and args.versus:
        side_by_side(args.database, args.versus, max(10, args.requests // 10))
    elif args.database:
        serve_and_measure(args.database, args.requests)
    else:
        with scratch_database(f"village_bench_api_{os.getpid()}", keep=args.keep) as url:
            fill_serve_and_measure(url, args.requests)


def sweep(http: httpx.Client, headers: dict[str, str], metric: str | None) -> int:
    """Every page of the county's meters' latest values; returns how many values."""
    after, values = None, 0
    while True:
        params = ({"kind": "water_meter", "limit": "1000"} | ({"after": after} if after else {})
                  | ({"metric": metric} if metric else {}))
        body = http.get("/telemetry/latest", params=params, headers=headers).raise_for_status().json()
        values += len(body["items"])
        after = body["next_after"]
        if after is None:
            return values


def columns(http: httpx.Client, headers: dict[str, str], metric: str | None,
            packed: bool) -> httpx.Response:
    """The county's meters' latest values in one columns request (httpx asks for gzip)."""
    params = {"kind": "water_meter"} | ({"metric": metric} if metric else {})
    plain = {} if packed else {"Accept-Encoding": "identity"}
    response = http.get("/telemetry/latest/columns", params=params, headers=headers | plain)
    return response.raise_for_status()


def county_columns(http: httpx.Client, headers: dict[str, str], metric: str | None,
                   packed: bool) -> int:
    """The county's meters' latest values in one columns request, read as a client would;
    returns how many values."""
    body = columns(http, headers, metric, packed).json()
    assert body["next_after"] is None and len(body["device_id"]) == METERS
    return sum(value is not None for column in body["metrics"].values()
               for value in column["value"])


def side_by_side(url: str, versus: str, sweeps: int) -> None:
    """County sweeps against this code and another checkout's, served from one database at
    once and alternated, so both meet the same machine load."""
    with psycopg.connect(url) as conn:
        _, admin = create_token(conn, SYSTEM, f"bench-versus-{os.getpid()}", Role.ADMIN, Place())
    headers = {"Authorization": f"Bearer {admin}"}
    with api_server(url) as (here, _), api_server(url, versus) as (there, _), \
            httpx.Client(base_url=here, timeout=60) as this, \
            httpx.Client(base_url=there, timeout=60) as that:
        for metric in (None, "total_m3"):
            times: dict[str, list[float]] = {"this checkout": [], versus: []}
            for _ in range(sweeps + 1):  # the first round warms both up
                for name, http in (("this checkout", this), (versus, that)):
                    started = time.perf_counter()
                    assert sweep(http, headers, metric) == (1 if metric else 2) * METERS
                    times[name].append((time.perf_counter() - started) * 1000)
            for name, measured in times.items():
                ordered = sorted(measured[1:])
                print(f"all {METERS:,} meters, {metric or 'every metric'}, {name}: n={sweeps}"
                      f" p50 {statistics.median(ordered):.0f} ms, best {ordered[0]:.0f} ms,"
                      f" worst {ordered[-1]:.0f} ms; {load()}", flush=True)


def fill_serve_and_measure(url: str, requests: int) -> None:
    """Fill the database, serve the API from it, and time the scenarios."""
    print(f"before: {load()}", flush=True)
    migrate(url, retention=timedelta(days=730))
    started = time.perf_counter()
    timings = fill(url)
    print(f"filled {METERS} meters,"
          f" {timings['readings']:,} readings in {time.perf_counter() - started:.0f} s"
          f" (raw {timings['raw_s']:.0f} s, rollup+vacuum {timings['rollup_and_vacuum_s']:.0f} s);"
          f" {load()}", flush=True)
    serve_and_measure(url, requests)


def serve_and_measure(url: str, requests: int) -> None:
    """Serve the API from a filled database and time the scenarios."""
    with psycopg.connect(url) as conn:
        _, admin = create_token(conn, SYSTEM, f"bench-admin-{os.getpid()}", Role.ADMIN, Place())
        _, cadre = create_token(conn, SYSTEM, f"bench-cadre-{os.getpid()}", Role.CADRE,
                                Place("镇2", "镇2村17"))
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()}
    with api_server(url) as (base_url, pid), httpx.Client(base_url=base_url,
                                                           timeout=60) as http:
        as_admin = {"Authorization": f"Bearer {admin}"}
        as_cadre = {"Authorization": f"Bearer {cadre}"}

        def get(path: str, headers: dict[str, str], params: dict[str, str]) -> httpx.Response:
            return http.get(path, headers=headers, params=params).raise_for_status()

        def county(metric: str | None) -> None:
            # Every meter has total_m3 and battery_v readings (and no other metric).
            assert sweep(http, as_admin, metric) == (1 if metric else 2) * METERS

        def county_at_once(metric: str | None, packed: bool) -> None:
            assert county_columns(http, as_admin, metric, packed) == (1 if metric else 2) * METERS

        for metric in ("total_m3", None):
            sizes = [int(columns(http, as_admin, metric, packed).headers["content-length"])
                     for packed in (True, False)]  # as sent (httpx unpacks the content)
            print(f"columns of {metric or 'every metric'}: {sizes[0] / 1000:.0f} KB gzip-packed,"
                  f" {sizes[1] / 1000:.0f} KB plain", flush=True)
        p99 = measure("latest register (total_m3), all 15,000 meters, one columns request (gzip)",
                      lambda: county_at_once("total_m3", True), max(100, requests))
        print(f"goal: a county's latest meter values p99 < {GOAL_P99_MS} ms:"
              f" {'met' if p99 < GOAL_P99_MS else 'NOT met'} (p99 {p99:.0f} ms); {load()}",
              flush=True)
        measure("latest register (total_m3), all 15,000 meters, one columns request (plain)",
                lambda: county_at_once("total_m3", False), max(100, requests))
        measure("latest values (6 metrics), all 15,000 meters, one columns request (gzip)",
                lambda: county_at_once(None, True), max(100, requests))
        print("the register of all 15,000 meters, the two forms alternating:", flush=True)
        alternate({"one columns request (gzip)": lambda: county_at_once("total_m3", True),
                   "15 pages": lambda: county("total_m3")}, max(10, requests // 10))
        for name, call in (("one columns request", lambda: county_at_once("total_m3", True)),
                           ("15 pages", lambda: county("total_m3"))):
            cpu_per_call(url, pid, name, call, max(10, requests // 10))
        daily_use = {"kind": "water_meter", "metric": "total_m3", "bucket": "1d", "agg": "delta"}
        measure("latest values (6 metrics), one page of 1,000 meters", lambda: get(
            "/telemetry/latest", as_admin, {"kind": "water_meter", "limit": "1000"}), requests)
        measure("latest values (6 metrics), all 15,000 meters (15 pages)",
                lambda: county(None), max(10, requests // 10))
        measure("latest register (total_m3), all 15,000 meters (15 pages)",
                lambda: county("total_m3"), max(10, requests // 10))
        measure("30-day daily consumption, one village (cadre token)", lambda: get(
            "/telemetry/places", as_cadre, daily_use | window), requests)
        measure("30-day daily series, one meter", lambda: get(
            "/devices/wm-2-17-42/series", as_admin,
            {"metric": "total_m3", "bucket": "1d", "agg": "last"} | window), requests)
        measure("30-day daily consumption per village, whole county", lambda: get(
            "/telemetry/places", as_admin, daily_use | window), max(10, requests // 10))
        print(f"API server peak RSS {peak_rss_mb(pid):.0f} MB; after: {load()}")


if __name__ == "__main__":
    main()
