"""Soak: ten counties on one box with everything running, reported every five minutes.

    .venv/bin/python bench/soak.py [--counties 10] [--minutes 60] [--workers 2]

A scratch database and a private Mosquitto (queue limits off: nothing may be dropped);
`--counties` counties of about 18,500 devices each (15,000 meters, 3,000 cameras, 400
loudspeakers, probes, barns; meters ride one gateway per village as the simulator
multiplexes them) simulated at their real rates in child processes; the NB-IoT meters
(`--burst-share` of them) upload their day (96 readings a message) from `--burst-at-s`,
spread over `--burst-over-s`; `--workers` ingest workers on one shared subscription,
alerting with the presets, the broadcast daemon with an emergency to every county's
loudspeakers every `--emergency-every-s` (4,000 speakers for ten counties), and the API
answering a steady trickle of operator requests (a county's latest meter values, township
by township, one columns request each). All are the real commands (`village ingest`, `village alerts run`,
`village broadcast daemon`, `village api serve`) in processes of their own.

Every `--report-every-s` it prints: messages published and committed, the backlog (what
the broker stores, which grows when subscribers fall behind, and what workers hold),
publish-to-commit p50/p99, alert pass p99 and reading-to-notification p99, each
emergency's time until every speaker accepted, API p99, and every process's RSS and CPU,
with the load average. At the end it stops the load, waits for ingest to drain, and checks
that nothing was lost; `--summary FILE` writes the figures as JSON (the test reads it).

Not a timed test: the targets (docs/ingest.md, "Soak") are read from its output. The
machine is shared (2 cores): read every figure beside the load printed with it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from common import load
from soak_load import Operators, emergency
from soak_parts import (
    DAY_READINGS,
    BrokerStore,
    child_pids,
    county,
    days_stored,
    postgres_cpu_s,
    proc_stats,
    run_burst,
    run_fleet,
    scrape,
    total,
)
from soak_report import Probe, report, rss_growth, seconds

from ground.local import MosquittoServer, PostgresCluster, free_port, wait_for_port
from ground.principal import SYSTEM, Place, Role
from simulators.store import register
from village.api.tokens import create_token
from village.schema import migrate

# A given server (a preloaded TimescaleDB, or the tests' server) is used as it is; without
# one the soak starts a PostgreSQL of its own with stock settings, as `village up` and the
# compose file's server run: the shared test server has autovacuum off, under which the
# tables updated in place (latest values, presence, rollups) bloat without end.
GIVEN_ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL")
PREFIX = "soak"
SPAWN = multiprocessing.get_context("spawn")


@dataclass
class Stack:
    """The processes under test and where their metrics are served."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)  # name -> metrics port
    api_port: int = 0

    def start(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        """Run `village ARGV` with these settings, its output in a log file."""
        log = (log_dir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen([sys.executable, "-m", "village.cli", *argv],
                                                env={**os.environ, **env}, stdout=log,
                                                stderr=subprocess.STDOUT)

    def stop(self) -> None:
        """Ask every process to stop, then wait for it."""
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


# The local default routing (everything printed) without its group wait, so that
# reading-to-notification is the system's own latency: a route's group wait adds to it by
# design (it gathers an outage's alerts into one notice).
ROUTING = """
receivers: [{name: console, type: console}]
route:
  receivers: [console]
  group_wait: 0s
  routes: [{match: {condition: stopped}, group_by: [rule, township]}]
inhibit:
  - {source: {rule: gateway-stopped}, target: {condition: stopped}, equal: [gateway]}
  - {source: {rule: area-outage}, target: {condition: stopped}, equal: [township]}
"""


def start_stack(url: str, mqtt_url: str, workers: int, log_dir: Path) -> Stack:
    """Ingest workers, alerting, the broadcast daemon and the API, each its own process."""
    routing = log_dir / "routing.yaml"
    routing.write_text(ROUTING, encoding="utf-8")
    base = {"VILLAGE_DATABASE_URL": url, "VILLAGE_MQTT_URL": mqtt_url,
            "VILLAGE_TOPIC_PREFIX": PREFIX, "VILLAGE_DEVELOPMENT": "true"}
    stack = Stack(api_port=free_port())
    for n in range(1, workers + 1):
        stack.metrics[f"ingest-{n}"] = port = free_port()
        stack.start(f"ingest-{n}", ["ingest", "--status-every", "60"], base | {
            "VILLAGE_INGEST__CLIENT_ID": f"soak-ingest-{n}",
            "VILLAGE_INGEST__METRICS_PORT": str(port)}, log_dir)
    stack.metrics["alerting"] = port = free_port()
    stack.start("alerting", ["alerts", "run"], base | {
        "VILLAGE_ALERTING__METRICS_PORT": str(port),
        "VILLAGE_ALERTING__ROUTING_FILE": str(routing)}, log_dir)
    stack.metrics["broadcast"] = port = free_port()
    stack.start("broadcast", ["broadcast", "daemon"], base | {
        "VILLAGE_BROADCAST__CLIENT_ID": "soak-broadcast",
        "VILLAGE_BROADCAST__METRICS_PORT": str(port)}, log_dir)
    stack.start("api", ["api", "serve"], base | {"VILLAGE_API__PORT": str(stack.api_port)},
                log_dir)
    for port in (*stack.metrics.values(), stack.api_port):
        wait_for_port(port, timeout_s=120)
    return stack


def open_files_limit(pid: int) -> int:
    """A process's limit on open files (each MQTT connection takes one)."""
    for row in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if row.startswith("Max open files"):
            return int(row.split()[3])
    return 0


def drained(stack: Stack, settle_s: float = 5.0, timeout_s: float = 600.0) -> bool:
    """Wait until every worker has committed all it received and nothing more arrives."""
    deadline = time.monotonic() + timeout_s
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        samples = [scrape(port) for name, port in stack.metrics.items()
                   if name.startswith("ingest")]
        received = sum(total(s, "village_ingest_messages_received_total") for s in samples)
        committed = sum(total(s, "village_ingest_messages_committed_total") for s in samples)
        if received != committed or received != last:
            last, since = received, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            return True
        time.sleep(0.5)
    return False


def main() -> None:  # noqa: PLR0915 - one straight run, phase after phase
    """Set up, run the load, report every interval, drain, check, tear down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counties", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2, help="ingest workers")
    parser.add_argument("--report-every-s", type=float, default=300)
    parser.add_argument("--burst-at-s", type=float, default=120,
                        help="when the NB-IoT meters upload their day (negative: never)")
    parser.add_argument("--burst-over-s", type=float, default=60,
                        help="the NB-IoT uploads spread evenly over this many seconds")
    parser.add_argument("--cameras-on-gateways", action="store_true",
                        help="cameras ride their village's uplink instead of a connection"
                             " each (for brokers whose open-file limit is below the count)")
    parser.add_argument("--burst-share", type=float, default=1.0,
                        help="share of the meters that are NB-IoT (the rest ride gateways)")
    parser.add_argument("--emergency-every-s", type=float, default=600)
    parser.add_argument("--tamper-every-s", type=float, default=30,
                        help="each simulator process tampers with one of its cameras this"
                             " often (live alerts to time; negative: never)")
    parser.add_argument("--api-every-s", type=float, default=5)
    parser.add_argument("--counties-per-simulator", type=int, default=2)
    parser.add_argument("--summary", type=Path, help="write the figures here as JSON")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch database (or the private server's data),"
                             " the broker's data and the logs")
    args = parser.parse_args()
    print(f"before: {load()}", flush=True)
    name = f"village_soak_{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    tmp.chmod(0o755)  # the private server runs as `postgres` when we are root
    server = None if GIVEN_ADMIN_URL else PostgresCluster(data_dir=tmp / "postgres").init().start()
    admin_url = GIVEN_ADMIN_URL or server.admin_url  # type: ignore[union-attr]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        settings: dict[str, str] = dict(conn.execute(
            "SELECT name, current_setting(name) FROM unnest(ARRAY['autovacuum', 'shared_buffers',"
            " 'work_mem']) AS name").fetchall())
    print(f"PostgreSQL: {'the given server' if server is None else 'a private server'},"
          f" autovacuum {settings['autovacuum']}, shared_buffers {settings['shared_buffers']},"
          f" work_mem {settings['work_mem']}", flush=True)
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    broker = MosquittoServer(data_dir=tmp / "mosquitto", extra_conf="sys_interval 5\n").start()
    broker_store = BrokerStore(broker.url)
    stack = Stack()
    children: list[multiprocessing.process.BaseProcess] = []
    stop_fleets = SPAWN.Event()
    summary: dict = {"counties": args.counties, "minutes": args.minutes, "reports": []}
    try:
        migrate(url, retention=timedelta(days=730))
        started = time.perf_counter()
        counties = [county(i, args.burst_share, args.cameras_on_gateways)
                    for i in range(1, args.counties + 1)]
        connections = sum(1 for c in counties for d in c.realtime if d.gateway_id is None)
        limit = open_files_limit(broker.process.pid if broker.process else 0)
        print(f"{connections:,} device connections to the broker (its open-file limit"
              f" {limit:,}); {load()}", flush=True)
        if connections + 100 > limit:
            raise SystemExit(f"the broker cannot take {connections:,} connections with an"
                             f" open-file limit of {limit:,}: raise it (ulimit -n) or run"
                             " with --cameras-on-gateways")
        with psycopg.connect(url) as conn:
            for c in counties:
                register(conn, c.realtime + c.burst)
        devices = sum(len(c.realtime) + len(c.burst) for c in counties)
        burst_ids = [d.device_id for c in counties for d in c.burst]
        speakers = [s for c in counties for s in c.speakers]
        direct = [d.device_id for c in counties for d in c.realtime
                  if d.gateway_id is None and d.kind in ("camera", "speaker")]
        print(f"{args.counties} counties, {devices:,} devices registered in"
              f" {time.perf_counter() - started:.0f} s; {len(burst_ids):,} NB-IoT meters; {load()}",
              flush=True)
        stack = start_stack(url, broker.url, args.workers, tmp)
        with psycopg.connect(url) as conn:
            _, token = create_token(conn, SYSTEM, "soak-operator", Role.ADMIN, Place())
        counters, ready = [], []
        per = max(1, args.counties_per_simulator)
        for first in range(0, len(counties), per):
            group = [d for c in counties[first:first + per] for d in c.realtime]
            published, is_ready = SPAWN.Value("q", 0), SPAWN.Event()
            child = SPAWN.Process(target=run_fleet, args=(broker.url, PREFIX, group, first,
                                                          published, is_ready, stop_fleets,
                                                          args.tamper_every_s))
            child.start()
            children.append(child)
            counters.append(published)
            ready.append(is_ready)
        started = time.perf_counter()
        for is_ready in ready:
            if not is_ready.wait(900):
                raise RuntimeError(f"the simulators did not connect all {connections:,} devices"
                                   f" in 15 minutes (the broker may take {limit:,} at most)")
        print(f"simulators connected in {time.perf_counter() - started:.0f} s; {load()}",
              flush=True)
        pids = {n: p.pid for n, p in stack.processes.items()} | {
            "mosquitto": broker.process.pid if broker.process else 0} | {
            f"simulator-{i + 1}": c.pid or 0 for i, c in enumerate(children)} | {
            name.replace("ingest", "committer"): child for name, process in stack.processes.items()
            if name.startswith("ingest") for child in child_pids(process.pid)}
        operators = Operators(stack.api_port, token, counties, args.api_every_s)
        operators.start()
        burst_published, burst_acked, burst_done = SPAWN.Value("q", 0), SPAWN.Value("q", 0), \
            SPAWN.Event()
        burst_child = None
        burst_end = datetime.now(UTC).replace(second=0, microsecond=0)
        burst_began, burst_drained_s = 0.0, None
        emergencies: list[tuple[str, str]] = []
        begin = time.monotonic()
        with psycopg.connect(url) as conn:
            db_begin = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        probe = Probe(begin, db_begin, {n: scrape(p) for n, p in stack.metrics.items()},
                      {n: proc_stats(p)[1] for n, p in pids.items()} | {"postgres": postgres_cpu_s()})
        end = begin + args.minutes * 60
        next_report = begin + min(args.report_every_s, args.minutes * 60)
        next_emergency = begin + min(30.0, args.emergency_every_s)
        burst_at = begin + args.burst_at_s if args.burst_at_s >= 0 else float("inf")
        while (now := time.monotonic()) < end:
            if burst_child is None and now >= burst_at and burst_ids:
                burst_child = SPAWN.Process(target=run_burst, args=(
                    broker.url, PREFIX, burst_ids, burst_end, args.burst_over_s,
                    burst_published, burst_acked, burst_done))
                burst_child.start()
                children.append(burst_child)
                burst_began = now
                print(f"NB-IoT burst: {len(burst_ids):,} meters upload their day over"
                      f" {args.burst_over_s:.0f} s; {load()}", flush=True)
            watching = burst_child is not None and burst_drained_s is None
            if watching and days_stored(url, burst_ids, burst_end) == len(burst_ids):
                burst_drained_s = time.monotonic() - burst_began
                print(f"NB-IoT burst: every day committed {burst_drained_s:.0f} s after it"
                      f" began; {load()}", flush=True)
            if now >= next_emergency:
                emergencies.append((emergency(url, speakers), f"{len(counties)} counties'"
                                    f" {len(speakers):,} speakers"))
                next_emergency += args.emergency_every_s
            if now >= next_report:
                published = sum(c.value for c in counters) + burst_published.value
                probe, figures = report(url, stack.metrics, published, probe, operators,
                                        emergencies, pids, broker_store, direct)
                summary["reports"].append(figures)
                next_report += args.report_every_s
            wake = min(next_report, next_emergency, end, burst_at if burst_child is None else end,
                       time.monotonic() + (5 if watching else 60))
            time.sleep(max(0.0, wake - time.monotonic()))
        # The target's window is the last 30 minutes of an hour; a shorter run's second half.
        window_s = min(30 * 60, args.minutes * 30)
        growth = rss_growth(summary["reports"], window_s, args.report_every_s)
        if growth:
            print(f"RSS growth over the last {window_s / 60:.0f} minutes: " + ", ".join(
                f"{n} {g:+.0%}" for n, g in growth.items()), flush=True)
        operators.stop()
        stop_fleets.set()
        if burst_child is not None:
            burst_done.wait(900)
        for child in children:
            child.join(120)
        started = time.perf_counter()
        ok = drained(stack)
        published = sum(c.value for c in counters) + burst_published.value
        probe, figures = report(url, stack.metrics, published, probe, operators, emergencies,
                                pids, broker_store, direct)
        summary["reports"].append(figures)
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM readings WHERE device_id = ANY(%s)",
                                  (burst_ids,)).fetchone()[0]  # type: ignore[index]
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]  # type: ignore[index]
        summary.update({
            "drained": ok, "drain_s": time.perf_counter() - started,
            "burst_messages": burst_published.value, "burst_acknowledged": burst_acked.value,
            "burst_readings_expected": len(burst_ids) * DAY_READINGS if burst_child else 0,
            "burst_readings_stored": stored, "dead_letters": dead,
            "burst_drained_s": burst_drained_s, "rss_growth": growth, "rss_growth_window_s": window_s,
            "api_requests": len(operators.requests), "api_errors": operators.errors,
            "emergencies": len(emergencies),
        })
        print(f"drained: {ok} in {seconds(summary['drain_s'])}; NB-IoT readings stored"
              f" {stored:,} of {summary['burst_readings_expected']:,}; dead letters {dead};"
              f" API requests {len(operators.requests)} ({operators.errors} errors); {load()}",
              flush=True)
    finally:
        stop_fleets.set()
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
        stack.stop()
        broker_store.close()
        broker.stop()
        if not args.keep:
            if server is None:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                server.stop()
            shutil.rmtree(tmp, ignore_errors=True)  # the database, the broker's data, the logs
        elif server is not None:
            server.stop()
            print(f"kept: the private server's data in {server.data_dir}", flush=True)
    if args.summary:
        args.summary.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
