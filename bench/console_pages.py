"""Benchmark: console page times p50/p99 and page weight, over a year of data for 15,000
water meters on plain PostgreSQL.

Pages: the overview (and its map data for every meter), the firing alerts list, the device
list (first page, and a search), and a device page with a 30-day chart. The data is the API
benchmark's (bench/api_latency.py: a year of daily register readings and weekly battery
readings per meter, daily rollups), plus hourly rollups, a position per meter and 500 firing
alerts. The API (which serves the console) runs as `village api serve` in a child process;
requests are sequential from this process over loopback, so a time is the server's time
plus a local round trip. Weight is what a browser downloads for a page and its assets, as
sent (gzip) and unpacked.

Run: `.venv/bin/python bench/console_pages.py [--requests 100] [--keep]`. Not a test.
Uses a scratch database on TEST_DATABASE_ADMIN_URL (default the local server), dropped after.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from api_latency import METERS, fill, measure
from common import api_server, load, peak_rss_mb, scratch_database

from ground.principal import SYSTEM, Place, Role
from village.console.accounts import create_user
from village.console.sessions import start_session
from village.schema import migrate

ALERTS = 500
PAGES = {
    "overview": "/console/",
    "overview map data (every meter)": "/console/map.json",
    "alerts, firing": "/console/alerts",
    "devices, first page": "/console/devices",
    "devices, search": "/console/devices?q=wm-2-17",
    "device page, 30-day chart": "/console/devices/wm-2-17-42?metric=total_m3&span=30d",
}
WEIGHED = {"sign-in": "/console/sign-in", "overview": "/console/", "alerts": "/console/alerts",
           "devices": "/console/devices",
           "device page": "/console/devices/wm-2-17-42?metric=total_m3&span=30d"}


def add_console_data(url: str) -> None:
    """Hourly rollups, positions, and firing alerts on some meters."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO readings_hourly SELECT device_id, metric, date_trunc('hour', ts),"
            " count(*), min(value), max(value), avg(value), (array_agg(value ORDER BY ts))[1],"
            " (array_agg(value ORDER BY ts DESC))[1] FROM readings GROUP BY 1, 2, 3")
        conn.execute(
            "UPDATE devices SET latitude = 30 + (abs(hashtext(village)) % 1000) / 2000.0"
            " + (abs(hashtext(device_id)) % 100) / 200000.0,"
            " longitude = 120 + (abs(hashtext(township || village)) % 1000) / 2000.0"
            " + (abs(hashtext(device_id || 'x')) % 100) / 200000.0")
        conn.execute(
            "INSERT INTO alerts (fingerprint, rule, condition, severity, state, device_id, kind,"
            " township, village, grid, metric, summary, value, threshold, last_value,"
            " started_at, fired_at)"
            " SELECT 'fp-' || device_id, 'night_flow', 'threshold',"
            " (ARRAY['critical', 'major', 'minor', 'info'])[1 + n %% 4], 'firing', device_id,"
            " 'water_meter', township, village, grid, 'total_m3', '夜间流量偏高', 0.1, 0.05, 0.1,"
            " now() - n * INTERVAL '1 minute', now() - n * INTERVAL '1 minute'"
            " FROM (SELECT *, row_number() OVER (ORDER BY device_id) AS n FROM devices"
            "       ORDER BY device_id LIMIT %s) d", (ALERTS,))
        conn.execute("VACUUM ANALYZE")


def signed_in(url: str) -> str:
    """A session cookie of a county admin."""
    with psycopg.connect(url) as conn:
        user = create_user(conn, SYSTEM, "bench", "bench password", Role.ADMIN, Place())
        cookie, _ = start_session(conn, user, datetime.now(UTC), timedelta(hours=2))
    return cookie


def weight(http: httpx.Client, path: str) -> tuple[float, float]:
    """KB sent (gzip) and unpacked of a page with every script, style and fetch it names."""
    page = http.get(path, headers={"accept-encoding": "gzip"})
    assets = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', page.text)
    assets += re.findall(r'data-src="([^"]+)"', page.text)
    sent = unpacked = 0
    for answer in [page, *(http.get(a, headers={"accept-encoding": "gzip"}) for a in assets)]:
        answer.raise_for_status()
        unpacked += len(answer.content)  # httpx unpacks gzip
        sent += answer.num_bytes_downloaded
    return sent / 1024, unpacked / 1024


def main() -> None:
    """Fill a scratch database, serve the console from it, and time the pages."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    with scratch_database(f"village_bench_console_{os.getpid()}", args.keep) as url:
        print(f"before: {load()}", flush=True)
        migrate(url, retention=timedelta(days=730))
        started = time.perf_counter()
        timings = fill(url)
        add_console_data(url)
        print(f"filled {METERS} meters, {timings['readings']:,} readings, {ALERTS} alerts in"
              f" {time.perf_counter() - started:.0f} s; {load()}", flush=True)
        cookie = signed_in(url)
        with api_server(url) as (base_url, pid), httpx.Client(
                base_url=base_url, timeout=60,
                headers={"cookie": f"village_session={cookie}"}) as http:
            for label, path in PAGES.items():
                measure(label, lambda path=path: http.get(path), args.requests)
            print("page weight (page + assets + data it fetches), KB sent gzip / unpacked:")
            for label, path in WEIGHED.items():
                sent, unpacked = weight(http, path)
                print(f"  {label}: {sent:.0f} KB / {unpacked:.0f} KB", flush=True)
            print(f"API server peak RSS {peak_rss_mb(pid):.0f} MB; after: {load()}")

if __name__ == "__main__":
    main()
