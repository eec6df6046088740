"""Keeping the plain-PostgreSQL path current: rollups, partitions and retention (of raw
data, and of dead letters, alert history and broadcast records).

Runs beside the writer in every worker, but only the worker holding an advisory lock does
the work, so several workers never refresh the same rollups at once. On TimescaleDB the
extension's own policies do all of it and this loop only waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from ground.migrate import prepare_partitions
from ingest.settings import RetentionSettings

# How its sessions name themselves: alerting's horizon passes over them.
MAINTENANCE_APPLICATION = "village-maintenance"
# An arbitrary constant shared by every worker (pg_try_advisory_lock key).
MAINTENANCE_LOCK = 0x5641_4C4D
# Found by the soak on a server configured for tests: in ten minutes latest_values held
# 780,000 dead rows beside 317,000 live ones, and every write and read slowed with them.
AUTOVACUUM_OFF = ("maintenance: this PostgreSQL server runs with autovacuum off: the tables"
                  " updated in place (latest_values, device_presence, the rollups) will bloat"
                  " and slow every batch; set autovacuum = on")


@dataclass(frozen=True, slots=True)
class Due:
    """Which jobs are due now (pure: from the last run times and the intervals)."""

    rollups: bool
    housekeeping: bool


def due(now: float, last_rollups: float, last_housekeeping: float,
        retention: RetentionSettings) -> Due:
    """Which maintenance jobs are due at monotonic time `now`."""
    return Due(
        rollups=now - last_rollups >= retention.rollup_refresh_s,
        housekeeping=now - last_housekeeping >= retention.maintenance_interval_s,
    )


def record_intervals(retention: RetentionSettings) -> tuple[timedelta, timedelta, timedelta]:
    """The dead letters', alert history's and broadcasts' retention, as village_prune_records
    takes them."""
    return (timedelta(days=retention.dead_letter_days),
            timedelta(days=retention.alert_history_days),
            timedelta(days=retention.broadcast_days))


class Maintenance:
    """A thread that refreshes rollups and applies retention while it holds the lock."""

    def __init__(self, database_url: str, retention: RetentionSettings, stop: threading.Event,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self._url = database_url
        self._retention = retention
        self._stop = stop
        self._log = log
        self.holds_lock = False
        self.refreshes = 0
        self._thread = threading.Thread(target=self._run, name="village-maintenance",
                                        daemon=True)

    def start(self) -> None:
        """Start the maintenance thread."""
        self._thread.start()

    def join(self, timeout_s: float = 15.0) -> None:
        """Wait for the thread to finish after `stop` is set."""
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5,
                                     application_name=MAINTENANCE_APPLICATION) as conn:
                    self._serve(conn)
            except psycopg.Error as exc:
                self.holds_lock = False
                self._log(f"maintenance: {type(exc).__name__}; retrying")
            self._stop.wait(self._retention.rollup_refresh_s)

    def _serve(self, conn: psycopg.Connection) -> None:
        while not self._stop.is_set():
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MAINTENANCE_LOCK,)).fetchone()
            if row and row[0]:
                break
            self._stop.wait(self._retention.rollup_refresh_s)
        else:
            return
        self.holds_lock = True
        autovacuum = conn.execute("SELECT current_setting('autovacuum')").fetchone()
        if autovacuum and autovacuum[0] == "off":
            self._log(AUTOVACUUM_OFF)
        storage = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
        if storage is None or storage[0] != "plain":
            self._stop.wait()  # TimescaleDB's policies keep rollups and retention
            return
        last_rollups = last_housekeeping = float("-inf")
        while not self._stop.is_set():
            now = time.monotonic()
            jobs = due(now, last_rollups, last_housekeeping, self._retention)
            if jobs.housekeeping:
                prepare_partitions(conn)
                keep = timedelta(days=self._retention.raw_days)
                conn.execute("SELECT village_apply_retention(%s)", (keep,))
                conn.execute("SELECT village_prune_records(%s, %s, %s)", record_intervals(
                    self._retention))
                last_housekeeping = now
            if jobs.rollups:
                conn.execute("SELECT village_refresh_rollups()")
                self.refreshes += 1
                last_rollups = now
            self._stop.wait(self._retention.rollup_refresh_s / 4)
