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
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import psycopg
from common import api_server, load, peak_rss_mb, scratch_database

from ground.principal import SYSTEM, Place, Role
from village.api.tokens import create_token
from village.schema import migrate

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
    with scratch_database(f"village_bench_bodies_{os.getpid()}") as url:
        migrate(url, retention=timedelta(days=730))
        with psycopg.connect(url) as conn:
            _, admin = create_token(conn, SYSTEM, "bench-admin", Role.ADMIN, Place())
        with api_server(url) as (base_url, pid):
            send_big_bodies(base_url, pid, {"Authorization": f"Bearer {admin}"})


def send_big_bodies(base_url: str, pid: int, headers: dict[str, str]) -> None:
    """Send each big body; print how it was answered."""
    print(f"API up: server peak RSS {peak_rss_mb(pid):.0f} MB; {load()}", flush=True)
    json_body = b'{"device_id": "wm-1", "kind": "water_meter", "village": "a", "name": "' \
        + b"x" * (10 * MB) + b'"}'
    csv_row = b"wm-000001,water_meter,some village,some township\n"
    with httpx.Client(base_url=base_url, timeout=120) as http:
        for label, path, content, kind in [
            ("POST /devices, 10 MB JSON, length declared", "/devices", json_body,
             "application/json"),
            ("POST /devices, 10 MB JSON, streamed", "/devices", chunks(10 * MB, b" " * 65536),
             "application/json"),
            ("POST /devices/import, 70 MB CSV, streamed", "/devices/import",
             chunks(70 * MB, csv_row * 1000), "text/csv"),
        ]:
            started = time.perf_counter()
            try:
                response: httpx.Response | None = http.post(
                    path, content=content, headers=headers | {"content-type": kind})
            except httpx.HTTPError as exc:
                # The server may close the connection on a refused upload.
                print(f"  ({type(exc).__name__}: {exc})")
                response = None
            timed(label, response, started, pid)


if __name__ == "__main__":
    main()
