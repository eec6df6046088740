"""The streaming pass's reads: rows stored since a cursor, below the writers' horizon.
An adapter: SQL in, samples and events out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from alerting.model import Sample
from alerting.store import DeviceSeries

# A read sorts every row of the stored time it spans, so the span narrows where rows are
# dense (a morning's day uploads: a worker's transaction stores 100,000 readings at one
# instant) and widens again where they are sparse.
MAX_WINDOW = timedelta(seconds=5)
MIN_WINDOW = timedelta(milliseconds=1)
# Keeping a read's first 50,000 rows takes about 10 MB; at the default 4 MB the sort spilled
# every row of the window to disk (0.54 against 0.39 s for a window of 530,000 rows).
SORT_MEMORY = "32MB"
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    """How far a source has been read: every row ordered before this key (received_at,
    then the row's key) has been. Only rows stored before the horizon are read, so every
    writer that could still add rows before the cursor has committed: nothing is missed
    and nothing is read twice."""

    received_at: datetime
    device_id: str = ""
    key: str = ""  # the metric of a reading, the type of an event
    ts: datetime = EARLIEST
    # How much stored time the next read spans (not part of the position).
    window: timedelta = field(default=MAX_WINDOW, compare=False)

    @classmethod
    def at(cls, position: datetime, window: timedelta = MAX_WINDOW) -> Cursor:
        """Before every row stored at `position` or later."""
        return cls(position, window=window)


def _wider(window: timedelta) -> timedelta:
    return min(MAX_WINDOW, window * 2)


def _read_after(conn: psycopg.Connection, table: str, query: str, cursor: Cursor,
                horizon: datetime, limit: int) -> tuple[list[tuple], Cursor]:
    """Rows after `cursor` and stored before the horizon (at most `limit`, in cursor order),
    and the cursor after them; read a window at a time, jumping over empty stretches.

    Rows come in binary (timestamps convert in a quarter less time), and the sort keeps the
    `limit` first rows in memory instead of spilling the window to disk.
    """
    conn.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
    rows: list[tuple] = []
    while len(rows) < limit and cursor.received_at < horizon:
        until = min(horizon, cursor.received_at + cursor.window)
        wanted = limit - len(rows)
        part = conn.execute(query, {"at": cursor.received_at, "device": cursor.device_id,
                                    "key": cursor.key, "ts": cursor.ts, "until": until,
                                    "limit": wanted}, binary=True).fetchall()
        rows += part
        if len(part) == wanted:
            last = part[-1]
            span = last[-1] - part[0][-1]  # the stored time `wanted` rows took: read about that
            window = min(MAX_WINDOW, max(MIN_WINDOW, 2 * span))
            return rows, Cursor(last[-1], last[0], last[1], last[2], window)
        if part or cursor.window < MAX_WINDOW:
            # Everything before `until` is read. A narrow empty window is most often the gap
            # between two writers' transactions in a busy stretch: the next, wider one costs
            # as little.
            cursor = Cursor.at(until, _wider(cursor.window))
            continue
        # A quiet stretch, or a first start: on to the next stored row.
        cursor = Cursor.at(_next_stored(conn, table, until, horizon), MAX_WINDOW)
    return rows, cursor


def _next_stored(conn: psycopg.Connection, table: str, after: datetime,
                 horizon: datetime) -> datetime:
    """When the first row at `after` or later was stored (the horizon if none was), sought
    over spans growing fourfold: `min()` reads every row of its span, and with the backlog
    of a morning's burst ahead one span to the horizon took a second, once per transaction."""
    span = MAX_WINDOW
    while after < horizon:
        until = min(horizon, after + span)
        row = conn.execute(f"SELECT min(received_at) FROM {table}"  # noqa: S608 - our names
                           " WHERE received_at >= %s AND received_at < %s",
                           (after, until)).fetchone()
        if row and row[0] is not None:
            found: datetime = row[0]
            return found
        after, span = until, span * 4
    return horizon


_NEW_READINGS = """
SELECT device_id, metric, ts, value, received_at FROM readings
WHERE received_at >= %(at)s AND received_at < %(until)s
  AND (received_at, device_id, metric, ts) > (%(at)s, %(device)s, %(key)s, %(ts)s)
ORDER BY received_at, device_id, metric, ts LIMIT %(limit)s
"""


def new_readings(
    conn: psycopg.Connection, cursor: Cursor, horizon: datetime, limit: int
) -> tuple[DeviceSeries, Cursor]:
    """Readings after `cursor` stored before `horizon`, per device and metric, and the
    cursor after them."""
    rows, after = _read_after(conn, "readings", _NEW_READINGS, cursor, horizon, limit)
    series: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for device_id, metric, ts, value, _ in rows:
        series[device_id][metric].append(Sample(ts, value))
    return {d: dict(m) for d, m in series.items()}, after


_NEW_EVENTS = """
SELECT device_id, type, ts, received_at FROM events
WHERE received_at >= %(at)s AND received_at < %(until)s
  AND (received_at, device_id, type, ts) > (%(at)s, %(device)s, %(key)s, %(ts)s)
ORDER BY received_at, device_id, type, ts LIMIT %(limit)s
"""


def new_events(
    conn: psycopg.Connection, cursor: Cursor, horizon: datetime, limit: int
) -> tuple[dict[str, list[tuple[datetime, str]]], Cursor]:
    """Events after `cursor` stored before `horizon`, per device, and the cursor after them."""
    rows, after = _read_after(conn, "events", _NEW_EVENTS, cursor, horizon, limit)
    events: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for device_id, kind, ts, _ in rows:
        events[device_id].append((ts, kind))
    return events, after
