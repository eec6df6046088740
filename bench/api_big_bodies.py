"""Benchmark: what oversized request bodies cost the API (time to answer, server memory).

Sends to `village api serve` (a child process, on a scratch database): a 10 MB JSON body
to POST /devices with its length declared, the same streamed without a length, and a
70 MB CSV streamed to POST /devices/import (over the 64 MiB import limit, so it is spooled
to disk as it comes and refused once past the limit). Prints each answer's status and time,
and the server's peak RSS before and after.

Run: `.venv/bin/python bench/api_big_bodies.py`. Not a test. Uses a scratch database on
TEST_DATABASE_ADMIN_URL (default the local server), dropped after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import psycopg
from common import load, peak_rss_mb

from ground.local import free_port, wait_for_port
from ground.principal import SYSTEM, Place, Role
from village.api.tokens import create_token
from village.schema import migrate

ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
MB = 1024 * 1024


def chunks(total: int, chunk: bytes) -> Iterator[bytes]:
    """`total` bytes made of `chunk`, yielded a chunk at a time (no Content-Length)."""
    for _ in range(total // len(chunk)):
        yield chunk


def timed(name: str, send: httpx.Response | None, started: float, pid: int) -> None:
    """Print one request's outcome."""
    status = send.status_code if send is not None else "connection closed"
    print(f"{name}: {status} in {time.perf_counter() - started:.2f} s;"
          f" server peak RSS {peak_rss_mb(pid):.0f} MB; {load()}", flush=True)


def main() -> None:
    """Serve the API from a scratch database and send it the big bodies."""
    name = f"village_bench_bodies_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    server = None
    try:
        migrate(url, retention=timedelta(days=730))
        with psycopg.connect(url) as conn:
            _, admin = create_token(conn, SYSTEM, "bench-admin", Role.ADMIN, Place())
        port = free_port()
        env = {**os.environ, "VILLAGE_DATABASE_URL": url, "VILLAGE_DEVELOPMENT": "true",
               "VILLAGE_API__PORT": str(port),
               "VILLAGE_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}"}
        server = subprocess.Popen([sys.executable, "-m", "village.cli", "api", "serve"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, timeout_s=30)
        headers = {"Authorization": f"Bearer {admin}"}
        print(f"API up: server peak RSS {peak_rss_mb(server.pid):.0f} MB; {load()}", flush=True)
        json_body = b'{"device_id": "wm-1", "kind": "water_meter", "village": "a", "name": "' \
            + b"x" * (10 * MB) + b'"}'
        csv_row = b"wm-000001,water_meter,some village,some township\n"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            for label, method, path, content, kind in [
                ("POST /devices, 10 MB JSON, length declared", "POST", "/devices",
                 json_body, "application/json"),
                ("POST /devices, 10 MB JSON, streamed", "POST", "/devices",
                 chunks(10 * MB, b" " * 65536), "application/json"),
                ("POST /devices/import, 70 MB CSV, streamed", "POST", "/devices/import",
                 chunks(70 * MB, csv_row * 1000), "text/csv"),
            ]:
                started = time.perf_counter()
                try:
                    response: httpx.Response | None = http.request(
                        method, path, content=content, headers=headers | {"content-type": kind})
                except httpx.HTTPError as exc:
                    # The server may close the connection on a refused upload.
                    print(f"  ({type(exc).__name__}: {exc})")
                    response = None
                timed(label, response, started, server.pid)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
