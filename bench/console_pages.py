"""Benchmark: console page server times p50/p99 and page weight, for a county of 18,484
devices on plain PostgreSQL with a year of data.

The fleet: 15,000 water meters (3 townships, 150 villages), 3,000 cameras, 400 speakers,
48 water-quality probes and 36 barns, each with a position and a presence (about 3% of the
meters and 5% of the cameras offline). A year of data, generated inside PostgreSQL
(INSERT ... SELECT over generate_series):

- every meter: a year of daily register readings (the NB-IoT meter's one upload a day) and
  weekly battery readings, with their daily rollups and latest values;
- the measured village (镇2村17: 100 meters, 20 cameras): a year at the real rates, the
  register every 15 minutes and camera fps every hour, with hourly and daily rollups. The
  device page measured is one of its meters. A full year at real rates for the whole
  fleet (about 500 M readings) does not fit this machine's disk and time;
- a year of alerts (500 firing now, 20,000 resolved), of online/offline transitions (about
  a dozen per device) and 5,000 dead letters.

Pages: the overview and its map data (every device), the firing alerts, the device list
(first page, a later page, a search), and a device page with a 30-day and a 365-day chart. The API (which
serves the console) runs as `village api serve` in a child process; requests are sequential
from this process over loopback, so a time is the server's time plus a local round trip.
Weight is what a browser downloads for a page and its assets, as sent (gzip) and unpacked.

The map data is measured as a page is (requests in a row, which the server's 10-second map
cache answers), spaced past the cache (each answer starts a read of the database behind
it), and the read itself, timed in this process: what a scope's first request waits.

Run: `.venv/bin/python bench/console_pages.py [--requests 100] [--keep]`, or measure a
kept database again with `--database URL`. Not a test.
Uses a scratch database on TEST_DATABASE_ADMIN_URL (default the local server), dropped after.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from api_latency import measure
from common import add_database_options, api_server, load, measured_database, peak_rss_mb
from psycopg import sql

from ground.principal import SYSTEM, Place, Role
from village.console.accounts import create_user
from village.console.pages.overview import read_map
from village.console.scope_cache import FRESH_S
from village.console.sessions import start_session

DAYS = 365
TOWNSHIPS, VILLAGES, METERS_PER_VILLAGE, CAMERAS_PER_VILLAGE = 3, 50, 100, 20
SPEAKERS, PROBES, BARNS = 400, 48, 36
FIRING, RESOLVED, DEAD_LETTERS = 500, 20_000, 5_000
MEASURED_VILLAGE = "镇2村17"
METER = "wm-2-17-42"
PAGES = {
    "overview": "/console/",
    "overview map data (every device)": "/console/map.json",
    "alerts, firing": "/console/alerts",
    "devices, first page": "/console/devices",
    "devices, a later page": "/console/devices?after=wm-2-30-01",
    "devices, search": "/console/devices?q=wm-2-17",
    "device page, 30-day chart": f"/console/devices/{METER}?metric=total_m3&span=30d",
    "device page, 365-day chart": f"/console/devices/{METER}?metric=total_m3&span=365d",
}
WEIGHED = {"sign-in": "/console/sign-in", "overview": "/console/", "alerts": "/console/alerts",
           "devices": "/console/devices",
           "device page": f"/console/devices/{METER}?metric=total_m3&span=30d"}

# Each statement is one step of the fill; %(name)s are the module's figures.
_FLEET = [
    # Meters, then cameras in the same villages, speakers and sites spread over them.
    "INSERT INTO devices (device_id, kind, township, village, grid, name)"
    " SELECT format('wm-%%s-%%s-%%s', t, v, lpad(m::text, 2, '0')), 'water_meter',"
    "  format('镇%%s', t), format('镇%%s村%%s', t, v), format('%%s组', m %% 12), format('水表 %%s', m)"
    " FROM generate_series(1, %(townships)s) t, generate_series(1, %(villages)s) v,"
    "  generate_series(0, %(meters)s - 1) m",
    "INSERT INTO devices (device_id, kind, township, village, grid)"
    " SELECT format('cam-%%s-%%s-%%s', t, v, c), 'camera', format('镇%%s', t),"
    "  format('镇%%s村%%s', t, v), format('%%s组', c %% 12)"
    " FROM generate_series(1, %(townships)s) t, generate_series(1, %(villages)s) v,"
    "  generate_series(1, %(cameras)s) c",
    "INSERT INTO devices (device_id, kind, township, village)"
    " SELECT format('%%s-%%s', k.prefix, n), k.kind, format('镇%%s', 1 + n %% %(townships)s),"
    "  format('镇%%s村%%s', 1 + n %% %(townships)s, 1 + n %% %(villages)s)"
    " FROM (VALUES ('spk', 'speaker', %(speakers)s), ('wq', 'water_quality', %(probes)s),"
    "  ('barn', 'barn', %(barns)s)) k(prefix, kind, count), generate_series(1, k.count) n",
    "UPDATE devices SET latitude = 30 + (abs(hashtext(village)) %% 1000) / 2000.0"
    " + (abs(hashtext(device_id)) %% 100) / 200000.0,"
    " longitude = 120 + (abs(hashtext(township || village)) %% 1000) / 2000.0"
    " + (abs(hashtext(device_id || 'x')) %% 100) / 200000.0",
    # Heard within the last two minutes, but a few meters silent for two days and a few
    # cameras that said they were offline.
    "INSERT INTO device_presence (device_id, last_seen, reported_state, state_changed_at)"
    " SELECT device_id, CASE WHEN kind = 'water_meter' AND h %% 100 < 3"
    "  THEN now() - INTERVAL '2 days' ELSE now() - (h %% 120) * INTERVAL '1 second' END,"
    "  CASE WHEN kind = 'camera' AND h %% 100 < 5 THEN 'offline' ELSE 'online' END,"
    "  now() - INTERVAL '3 hours'"
    " FROM (SELECT device_id, kind, abs(hashtext(device_id)) AS h FROM devices) d",
    "INSERT INTO device_status_recorded SELECT device_id, online, now() FROM device_status",
]
_YEAR = [
    "SELECT village_ensure_partitions(now() - %(days)s * INTERVAL '1 day' - INTERVAL '1 month',"
    " now() + INTERVAL '1 month')",
    # Every meter: the register once a day at 18:00, the battery once a week.
    "INSERT INTO readings (device_id, metric, ts, value)"
    " SELECT d.device_id, 'total_m3', date_trunc('day', now()) - (%(days)s - n) * INTERVAL '1 day'"
    "  + INTERVAL '18 hours', 100 + n * (0.2 + (h %% 10) * 0.02)"
    " FROM (SELECT device_id, abs(hashtext(device_id)) AS h FROM devices"
    "  WHERE kind = 'water_meter' AND village <> %(village)s) d, generate_series(0, %(days)s - 1) n",
    "INSERT INTO readings (device_id, metric, ts, value)"
    " SELECT device_id, 'battery_v', date_trunc('day', now()) - w * INTERVAL '7 days',"
    "  3.6 - w * 0.001 FROM devices, generate_series(0, %(days)s / 7) w"
    " WHERE kind = 'water_meter'",
    # The measured village at the real rates: the register every 15 minutes, fps hourly.
    "INSERT INTO readings (device_id, metric, ts, value)"
    " SELECT device_id, 'total_m3', date_trunc('hour', now()) - n * INTERVAL '15 minutes',"
    "  100 + (%(days)s * 96 - n) * 0.003"
    " FROM devices, generate_series(0, %(days)s * 96 - 1) n"
    " WHERE kind = 'water_meter' AND village = %(village)s",
    "INSERT INTO readings (device_id, metric, ts, value)"
    " SELECT device_id, 'fps', date_trunc('hour', now()) - n * INTERVAL '1 hour', 20 + n %% 6"
    " FROM devices, generate_series(0, %(days)s * 24 - 1) n"
    " WHERE kind = 'camera' AND village = %(village)s",
    "INSERT INTO readings_hourly SELECT device_id, metric, date_trunc('hour', ts), count(*),"
    " min(value), max(value), avg(value), min(value), max(value) FROM readings"
    " WHERE device_id IN (SELECT device_id FROM devices WHERE village = %(village)s)"
    " GROUP BY 1, 2, 3",
    # Registers only grow: a bucket's first is its min and its last its max. Outside the
    # measured village a day holds one reading: its own rollup.
    "INSERT INTO readings_daily SELECT device_id, metric, date_trunc('day', ts, 'Asia/Shanghai'),"
    " count(*), min(value), max(value), avg(value), min(value), max(value) FROM readings"
    " WHERE device_id IN (SELECT device_id FROM devices WHERE village = %(village)s)"
    " GROUP BY 1, 2, 3",
    "INSERT INTO readings_daily SELECT device_id, metric, date_trunc('day', ts, 'Asia/Shanghai'),"
    " 1, value, value, value, value, value FROM readings"
    " WHERE device_id IN (SELECT device_id FROM devices WHERE village <> %(village)s)",
    "UPDATE rollup_watermarks SET refreshed_to = now()",
    "SELECT village_merge_latest()",
]
_RECORDS = [
    "INSERT INTO alerts (fingerprint, rule, condition, severity, state, device_id, kind,"
    " township, village, grid, metric, summary, value, threshold, last_value, started_at,"
    " fired_at, resolved_at)"
    " SELECT 'fp-' || device_id || '-' || n, 'night_flow', 'threshold',"
    "  (ARRAY['critical', 'major', 'minor', 'info'])[1 + n %% 4],"
    "  CASE WHEN n <= %(firing)s THEN 'firing' ELSE 'resolved' END, device_id, kind,"
    "  township, village, grid, 'total_m3', '夜间流量偏高', 0.1, 0.05, 0.1,"
    "  now() - n * INTERVAL '25 minutes', now() - n * INTERVAL '25 minutes',"
    "  CASE WHEN n > %(firing)s THEN now() - n * INTERVAL '25 minutes' + INTERVAL '2 hours' END"
    " FROM (SELECT d.*, row_number() OVER (ORDER BY hashtext(device_id), r) AS n"
    "  FROM devices d, generate_series(0, 1) r) d"
    " WHERE n <= %(firing)s + %(resolved)s",
    # About a dozen transitions a device over the year: offline by silence, back again.
    "INSERT INTO device_status_changes (device_id, at, online, reason)"
    " SELECT device_id, now() - (n * 30 + abs(hashtext(device_id)) %% 30) * INTERVAL '1 day'"
    "  + (i * INTERVAL '1 hour'), i = 1, CASE WHEN i = 1 THEN 'heard_again' ELSE 'silent' END"
    " FROM devices, generate_series(0, 5) n, generate_series(0, 1) i",
    "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload,"
    " payload_bytes)"
    " SELECT now() - n * INTERVAL '100 minutes', 'v1/' || device_id || '/telemetry', device_id,"
    "  'bad_json', 'unexpected end of input', '{\"total_m3\":', 12"
    " FROM (SELECT device_id, row_number() OVER (ORDER BY device_id) AS n FROM devices) d"
    " WHERE n <= %(dead_letters)s",
]
FIGURES = {"townships": TOWNSHIPS, "villages": VILLAGES, "meters": METERS_PER_VILLAGE,
           "cameras": CAMERAS_PER_VILLAGE, "speakers": SPEAKERS, "probes": PROBES,
           "barns": BARNS, "days": DAYS, "village": MEASURED_VILLAGE, "firing": FIRING,
           "resolved": RESOLVED, "dead_letters": DEAD_LETTERS}


def fill(url: str) -> str:
    """The fleet, a year of data and records."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _FLEET + _YEAR + _RECORDS:
            conn.execute(statement, FIGURES)
        conn.execute("VACUUM ANALYZE")
    return "filled the fleet, a year of data and the records"


def counts(url: str) -> dict[str, int]:
    """The row counts of what the database holds."""
    found = {}
    with psycopg.connect(url) as conn:
        for table in ("devices", "readings", "readings_hourly", "readings_daily", "alerts",
                      "device_status_changes", "dead_letters"):
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()
            found[table] = int(row[0]) if row else 0
        row = conn.execute("SELECT count(*) FROM readings r JOIN devices d USING (device_id)"
                           " WHERE d.village = %s", (MEASURED_VILLAGE,)).fetchone()
        found[f"readings of {MEASURED_VILLAGE}"] = int(row[0]) if row else 0
    return found


def signed_in(url: str) -> str:
    """A session cookie of a county admin."""
    with psycopg.connect(url) as conn:
        user = create_user(conn, SYSTEM, f"bench-{os.getpid()}", "bench password", Role.ADMIN,
                           Place())
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


def measure_map_spaced(http: httpx.Client, url: str, count: int) -> None:
    """Map requests spaced past the server's cache (each starts a read behind its answer),
    and the read itself, timed here: what a scope's first request after a start waits."""
    times = []
    for _ in range(count):
        time.sleep(FRESH_S + 0.2)
        started = time.perf_counter()
        http.get("/console/map.json").raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(f"overview map data, one request every {FRESH_S + 0.2:.1f} s: n={count}"
          f" p50 {statistics.median(times):.1f} ms, max {times[-1]:.1f} ms; {load()}")
    reads = []
    with psycopg.connect(url) as conn:
        for _ in range(count):
            started = time.perf_counter()
            read_map(conn, SYSTEM)
            reads.append((time.perf_counter() - started) * 1000)
    reads.sort()
    print(f"overview map data read from the database (query, gzip, tag; in this process):"
          f" n={count} p50 {statistics.median(reads):.1f} ms, max {reads[-1]:.1f} ms;"
          f" {load()}", flush=True)


def measure_pages(url: str, requests: int) -> None:
    """Serve the console from the database and time and weigh its pages."""
    print("  " + ", ".join(f"{table} {n:,}" for table, n in counts(url).items()))
    print(f"  a year for every meter at one register reading a day; {MEASURED_VILLAGE}"
          " (100 meters, 20 cameras) at the real rates (15 min, 1 h)", flush=True)
    cookie = signed_in(url)
    with api_server(url) as (base_url, pid), httpx.Client(
            base_url=base_url, timeout=60, headers={"cookie": f"village_session={cookie}"}) as http:
        print(f"sequential requests from one client, {requests} a page after 3 warm-up ones,"
              " as a county admin:")
        for label, path in PAGES.items():
            measure(label, lambda path=path: http.get(path), requests)
        measure_map_spaced(http, url, max(3, requests // 10))
        print("page weight (page + assets + data it fetches), KB sent gzip / unpacked:")
        for label, path in WEIGHED.items():
            sent, unpacked = weight(http, path)
            print(f"  {label}: {sent:.0f} KB / {unpacked:.0f} KB", flush=True)
        print(f"API server peak RSS {peak_rss_mb(pid):.0f} MB; after: {load()}")


def main() -> None:
    """Fill a scratch database (or take a filled one), serve the console, time the pages."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100)
    add_database_options(parser)
    args = parser.parse_args()
    print(f"before: {load()}", flush=True)
    with measured_database(args, "village_bench_console", fill) as url:
        measure_pages(url, args.requests)


if __name__ == "__main__":
    main()
