"""The database writer: one psycopg connection, one transaction per batch, COPY for rows.

Per batch: readings are copied straight into `readings`; a batch holding a duplicate, and
the next few after it, go through a per-connection staging table and `INSERT ... ON
CONFLICT DO NOTHING` instead (a reading sent twice is stored once), as events always do;
each series' newest reading is merged into `latest_values` (ingest/latest.py); presence and
pending devices are upserted, and the online/offline transitions they make go to the status
history (devices/status_history.py); dead letters are copied; a `pg_notify` tells
listeners (alerting) what was committed. The caller acknowledges the MQTT messages only after
`write` returns, i.e. after COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.types.json import Jsonb

from devices import status_history_store
from devices.status_history import Heard, after_heard
from ingest.admit import RegisteredDevice
from ingest.latest import merge_latest
from ingest.plan import BatchPlan

NOTIFY_CHANNEL = "village_ingest"

# Only readings after a duplicate go through a staging table. Events and presence come as
# arrays (unnest): a transaction that touches a temporary table truncates every ON COMMIT
# DELETE ROWS table at its commit, and in the ten-county soak those truncations were the
# commonest wait of ingest's sessions (IO:DataFileTruncate in COMMIT).
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_readings (
    device_id text, metric text, ts timestamptz, value double precision
) ON COMMIT DELETE ROWS
"""

_COPY_READINGS = "COPY readings (device_id, metric, ts, value) FROM STDIN (FORMAT BINARY)"
_COPY_STAGE_READINGS = "COPY stage_readings FROM STDIN (FORMAT BINARY)"
# Duplicates come in runs (a redelivered backlog): after one, batches go through staging
# for a while instead of failing the fast path again and again.
STAGED_AFTER_DUPLICATE = 20

_MOVE_READINGS = """
INSERT INTO readings (device_id, metric, ts, value)
SELECT device_id, metric, ts, value FROM stage_readings
ON CONFLICT DO NOTHING
"""

_INSERT_EVENTS = """
INSERT INTO events (device_id, ts, type, severity, body)
SELECT * FROM unnest(%b::text[], %b::timestamptz[], %b::text[], %b::text[], %b::jsonb[])
ON CONFLICT DO NOTHING
"""

# The batch's presence comes one array a column. Rows are taken in device order so two
# workers upserting overlapping devices lock them in the same order. `greatest` ignores
# NULLs: a status-only row leaves last_seen alone.
_MOVE_PRESENCE = """
INSERT INTO device_presence AS p
    (device_id, last_seen, reported_state, state_changed_at, firmware, ip)
SELECT device_id, last_seen, state, state_at, firmware, ip FROM
unnest(%b::text[], %b::timestamptz[], %b::text[], %b::timestamptz[], %b::text[], %b::text[])
    AS s (device_id, last_seen, state, state_at, firmware, ip)
ORDER BY device_id
ON CONFLICT (device_id) DO UPDATE SET
    last_seen = greatest(p.last_seen, excluded.last_seen),
    reported_state = coalesce(excluded.reported_state, p.reported_state),
    state_changed_at = CASE
        WHEN excluded.reported_state IS DISTINCT FROM p.reported_state
         AND excluded.reported_state IS NOT NULL THEN excluded.state_changed_at
        ELSE p.state_changed_at END,
    firmware = coalesce(excluded.firmware, p.firmware),
    ip = coalesce(excluded.ip, p.ip)
"""

# What the batch said of each device beside its merged presence and its recorded status,
# for the status history.
_HEARD = """
SELECT s.device_id, s.last_seen, s.state, s.state_at, p.reported_state, r.online
FROM unnest(%b::text[], %b::timestamptz[], %b::text[], %b::timestamptz[], %b::text[], %b::text[])
    AS s (device_id, last_seen, state, state_at, firmware, ip)
JOIN device_presence p USING (device_id)
LEFT JOIN device_status_recorded r USING (device_id)
"""

_UPSERT_PENDING = """
INSERT INTO pending_devices AS p (device_id, first_seen, last_seen, last_topic, messages)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE SET
    first_seen = least(p.first_seen, excluded.first_seen),
    last_seen = greatest(p.last_seen, excluded.last_seen),
    last_topic = CASE WHEN excluded.last_seen >= p.last_seen
                      THEN excluded.last_topic ELSE p.last_topic END,
    messages = p.messages + excluded.messages
"""

_COPY_DEAD_LETTERS = (
    "COPY dead_letters (received_at, topic, device_id, reason, detail, problems, partial,"
    " payload, payload_bytes) FROM STDIN"
)

_REGISTRY = ("SELECT device_id, kind, lifecycle = 'active', gateway_id FROM devices")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one committed batch stored."""

    readings: int
    duplicates: int
    events: int
    dead_letters: int
    presence: int


class Writer:
    """Owns one connection to the database; reconnects on demand."""

    def __init__(self, database_url: str, connect_timeout_s: int = 5) -> None:
        self._url = database_url
        self._timeout = connect_timeout_s
        self._conn: psycopg.Connection | None = None
        self._staged_batches_left = 0

    def _connection(self) -> psycopg.Connection:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self.close()
        conn = psycopg.connect(
            self._url,
            connect_timeout=self._timeout,
            application_name="village-ingest",
            # Notice a vanished server within about half a minute instead of hanging.
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
        )
        with conn.transaction():
            conn.execute(_STAGING)
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def registry(self) -> dict[str, RegisteredDevice]:
        """Every registered device."""
        return self._select_devices(_REGISTRY, ())

    def lookup(self, device_ids: Iterable[str]) -> dict[str, RegisteredDevice]:
        """The registered devices among these ids (one query)."""
        return self._select_devices(_REGISTRY + " WHERE device_id = ANY(%s)", (list(device_ids),))

    def _select_devices(self, query: str, params: tuple[object, ...]) -> dict[str, RegisteredDevice]:
        conn = self._connection()
        try:
            with conn.transaction():
                rows = conn.execute(query, params).fetchall()
        except psycopg.Error:
            self._discard_if_broken()
            raise
        return {row[0]: RegisteredDevice(row[1], row[2], row[3]) for row in rows}

    def write(self, plan: BatchPlan) -> WriteResult:
        """Store a batch in one transaction; on any error nothing of it is stored."""
        conn = self._connection()
        try:
            with conn.transaction():
                return self._write(conn, plan)
        except psycopg.Error:
            self._discard_if_broken()
            raise

    def _discard_if_broken(self) -> None:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self.close()

    def _store_readings(self, conn: psycopg.Connection, cur: psycopg.Cursor,
                        plan: BatchPlan) -> int:
        """Store the batch's readings, skipping any already stored; return how many were new."""
        if self._staged_batches_left == 0:
            # Fast path: COPY straight into readings, which is several times quicker than
            # INSERT ... ON CONFLICT. A duplicate (a redelivery, a resend) makes it fail as a
            # whole; the savepoint undoes it and the staging path below skips duplicates.
            try:
                with conn.transaction():
                    _copy_readings(cur, _COPY_READINGS, plan)
                return len(plan.readings)
            except psycopg.errors.UniqueViolation:
                self._staged_batches_left = STAGED_AFTER_DUPLICATE
        else:
            self._staged_batches_left -= 1
        _copy_readings(cur, _COPY_STAGE_READINGS, plan)
        cur.execute(_MOVE_READINGS)
        return cur.rowcount

    def _write(self, conn: psycopg.Connection, plan: BatchPlan) -> WriteResult:
        stored = duplicates = events = 0
        with conn.cursor() as cur:
            if plan.readings:
                stored = self._store_readings(conn, cur, plan)
                duplicates = len(plan.readings) - stored
                merge_latest(cur, plan.readings)
            if plan.events:
                cur.execute(_INSERT_EVENTS, [list(column) for column in zip(*(
                    (e.device_id, e.ts, e.type, e.severity, Jsonb(e.body)) for e in plan.events),
                    strict=True)])
                events = cur.rowcount
            if plan.presence:
                batch = [list(column) for column in zip(*(
                    (p.device_id, p.last_seen, p.state, p.state_at, p.firmware, p.ip)
                    for p in plan.presence.values()), strict=True)]
                cur.execute(_MOVE_PRESENCE, batch)
                _record_status(cur, batch)
            if plan.pending:
                cur.executemany(_UPSERT_PENDING, [
                    (p.device_id, p.first_seen, p.last_seen, p.last_topic, p.messages)
                    for p in sorted(plan.pending.values(), key=lambda p: p.device_id)
                ])
            if plan.dead_letters:
                with cur.copy(_COPY_DEAD_LETTERS) as copy:
                    for d in plan.dead_letters:
                        copy.write_row((d.received_at, d.topic, d.device_id, d.reason, d.detail,
                                        Jsonb(d.problems), d.partial, d.payload,
                                        d.payload_bytes))
            # stored_at is this transaction's now(), the received_at of every row it stored.
            cur.execute("SELECT pg_notify(%s, (%s::jsonb || jsonb_build_object('stored_at', now()))"
                        "::text)", (NOTIFY_CHANNEL, _notice(plan, stored, events)))
        return WriteResult(stored, duplicates, events, len(plan.dead_letters), len(plan.presence))


def _record_status(cur: psycopg.Cursor, batch: list[list[Any]]) -> None:
    """Add the batch's online/offline transitions to the status history (`batch`: the
    presence columns as given to _MOVE_PRESENCE)."""
    changes = [after_heard(Heard(*row[:5]), row[5])
               for row in cur.execute(_HEARD, batch).fetchall()]
    status_history_store.record(cur, [c for c in changes if c is not None])


def _copy_readings(cur: psycopg.Cursor, statement: str, plan: BatchPlan) -> None:
    with cur.copy(statement) as copy:
        copy.set_types(["text", "text", "timestamptz", "float8"])
        write_row = copy.write_row
        for reading in plan.readings:
            write_row(reading)  # a Reading is a tuple in the column order


def _notice(plan: BatchPlan, readings: int, events: int) -> str:
    return orjson.dumps({
        "readings": readings,
        "events": events,
        "dead_letters": len(plan.dead_letters),
        "devices": len(plan.presence),
        "received_at": plan.latest_received_at.isoformat() if plan.latest_received_at else None,
    }).decode()
