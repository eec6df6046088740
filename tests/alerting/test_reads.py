"""The streaming pass's reads: a cursor over what was stored, never a row twice or missed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerting import reads, store

from .fixtures import add_readings

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def read_all(conn: psycopg.Connection, cursor: reads.Cursor, horizon: datetime,
             limit: int) -> tuple[list[tuple[str, datetime]], int]:
    """Every reading after `cursor`, `limit` at a time; and how many reads it took."""
    seen: list[tuple[str, datetime]] = []
    count = 0
    while True:
        series, cursor = reads.new_readings(conn, cursor, horizon, limit)
        count += 1
        found = [(d, s.ts) for d, by_metric in series.items() for s in by_metric["total_m3"]]
        if not found:
            return seen, count
        seen += found


def test_rows_of_one_transaction_beyond_the_batch_are_read_once_each(
        conn: psycopg.Connection) -> None:
    # A morning's upload: one transaction, so one received_at for all 250 rows. Reading
    # 100 at a time must move on through them (a time-only watermark would read the same
    # first 100 again and again).
    with conn.transaction():
        for meter in range(5):
            add_readings(conn, f"wm-{meter}", "total_m3",
                         [(T0 + timedelta(minutes=15 * i), 100 + i) for i in range(50)])
    (stored,) = conn.execute("SELECT max(received_at) FROM readings").fetchone()  # type: ignore[misc]
    horizon = stored + timedelta(seconds=1)
    seen, count = read_all(conn, reads.Cursor.at(stored - timedelta(seconds=2)), horizon, 100)
    assert len(seen) == len(set(seen)) == 250
    assert count == 4  # 100, 100, 50, then nothing
    # Rows that dense (250 at one instant): the next read spans the least stored time, so
    # PostgreSQL sorts that instant's rows, not five seconds' worth.
    _, cursor = reads.new_readings(conn, reads.Cursor.at(stored - timedelta(seconds=2)),
                                   horizon, 100)
    assert cursor.received_at == stored and cursor.window == reads.MIN_WINDOW


def test_rows_at_or_after_the_horizon_wait_for_a_later_read(conn: psycopg.Connection) -> None:
    add_readings(conn, "wm-1", "total_m3", [(T0, 1.0)])
    (stored,) = conn.execute("SELECT max(received_at) FROM readings").fetchone()  # type: ignore[misc]
    start = reads.Cursor.at(stored - timedelta(seconds=1))
    series, cursor = reads.new_readings(conn, start, stored, 10)
    assert series == {} and cursor == reads.Cursor.at(stored)
    series, cursor = reads.new_readings(conn, cursor, stored + timedelta(microseconds=1), 10)
    assert [s.value for s in series["wm-1"]["total_m3"]] == [1.0]


def test_a_long_quiet_stretch_is_jumped_in_one_read(conn: psycopg.Connection) -> None:
    add_readings(conn, "wm-1", "total_m3", [(T0, 1.0)])
    (stored,) = conn.execute("SELECT max(received_at) FROM readings").fetchone()  # type: ignore[misc]
    # A first start from far back: days of nothing, read 5 seconds at a time, would take
    # tens of thousands of reads; the read jumps to the next stored row.
    series, cursor = reads.new_readings(conn, reads.Cursor.at(stored - timedelta(days=30)),
                                        stored + timedelta(seconds=1), 10)
    assert [s.value for s in series["wm-1"]["total_m3"]] == [1.0]
    assert cursor == reads.Cursor.at(stored + timedelta(seconds=1))


def test_the_gap_between_two_transactions_is_stepped_over_not_searched(
        conn: psycopg.Connection) -> None:
    # In a morning's backlog each writer's transaction is one instant of stored time with a
    # gap before the next. Searching for the next row with min() reads every stored row up
    # to the horizon (a second per gap in the ten-county soak); a gap narrower than the
    # widest window is crossed by widening windows instead.
    add_readings(conn, "wm-1", "total_m3", [(T0, 1.0)])
    time.sleep(0.3)
    add_readings(conn, "wm-2", "total_m3", [(T0, 2.0)])
    first, second = (row[0] for row in conn.execute(
        "SELECT received_at FROM readings ORDER BY received_at").fetchall())
    statements: list[str] = []
    executed = conn.execute

    def recorded(query: Any, params: Any = None, **options: Any) -> Any:
        statements.append(str(query))
        return executed(query, params, **options)

    conn.execute = recorded  # type: ignore[method-assign]
    start = reads.Cursor(first, "wm-1", "total_m3", T0, reads.MIN_WINDOW)
    series, cursor = reads.new_readings(conn, start, second + timedelta(seconds=1), 10)
    assert list(series) == ["wm-2"]
    assert not [q for q in statements if "min(received_at)" in q]
    assert second - first >= timedelta(milliseconds=250)


def test_samples_stored_out_of_time_order_come_to_the_rules_in_time_order(
        conn: psycopg.Connection) -> None:
    # Late data: the 12:15 reading is stored after the 12:30 one, so the stream reads them
    # in that order; with or without a lookback the rules must see them by time.
    for minutes in (30, 15, 45):
        add_readings(conn, "wm-late", "total_m3", [(T0 + timedelta(minutes=minutes), minutes)])
    (stored,) = conn.execute("SELECT max(received_at) FROM readings").fetchone()  # type: ignore[misc]
    series, _ = reads.new_readings(conn, reads.Cursor.at(stored - timedelta(seconds=5)),
                                   stored + timedelta(seconds=1), 100)
    assert [s.value for s in series["wm-late"]["total_m3"]] == [30, 15, 45]
    for needs in ({}, {("wm-late", "total_m3"): timedelta(hours=1)}):
        merged = store.with_history(conn, series, needs)
        assert [s.value for s in merged["wm-late"]["total_m3"]] == [15, 30, 45]
