"""What every benchmark prints beside its figures: the machine's load and peak memory.

Benchmarks run as scripts (`.venv/bin/python bench/NAME.py`), so this folder is on their
import path and they import this module as `common`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg

from ground.local import free_port, wait_for_port
from village.schema import migrate

ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def load() -> str:
    """The machine's load average and core count, printed with every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process: the most resident memory it ever had, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(row for row in status.splitlines() if row.startswith("VmHWM:")).split()[1]) / 1024


@contextmanager
def scratch_database(name: str, keep: bool = False) -> Iterator[str]:
    """A new, empty database on TEST_DATABASE_ADMIN_URL (default the local server): its
    URL; dropped afterwards unless `keep`."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        if not keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """--keep and --database: fill once, measure again later without filling."""
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--database", help="a database a --keep run filled: measure only")


@contextmanager
def measured_database(args: argparse.Namespace, name: str,
                      fill: Callable[[str], str]) -> Iterator[str]:
    """The database to measure: --database as given, or a scratch one (kept with --keep)
    migrated with two years' retention and filled by `fill`, whose summary is printed with
    the time the fill took."""
    if args.database:
        yield args.database
        return
    with scratch_database(f"{name}_{os.getpid()}", keep=args.keep) as url:
        migrate(url, retention=timedelta(days=730))
        started = time.perf_counter()
        summary = fill(url)
        print(f"{summary} in {time.perf_counter() - started:.0f} s; {load()}", flush=True)
        yield url


@contextmanager
def api_server(database_url: str, code: str | None = None) -> Iterator[tuple[str, int]]:
    """`village api serve` on this database in a child process: (its base URL, its pid).

    The API will not start without its broker: the machine's (VILLAGE_MQTT_URL, default
    the local Mosquitto), which it only publishes to when a request sends something.
    `code`: another checkout whose code to serve (to compare two versions side by side).
    """
    port = free_port()
    env = {**os.environ, "VILLAGE_DATABASE_URL": database_url, "VILLAGE_DEVELOPMENT": "true",
           "VILLAGE_API__PORT": str(port),
           "VILLAGE_MQTT_URL": os.environ.get("VILLAGE_MQTT_URL", "mqtt://127.0.0.1:1883")}
    if code is not None:
        env["PYTHONPATH"] = code
    server = subprocess.Popen([sys.executable, "-m", "village.cli", "api", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout_s=30)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait(10)


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; TimeoutError naming `what` past `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {what}")
        time.sleep(0.05)
