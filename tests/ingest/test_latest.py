"""The latest-value table: the newest reading per series, merged in the readings' transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devices.decode import Reading
from ingest.latest import newest_per_series
from ingest.plan import BatchPlan
from ingest.writer import Writer
from tests.ingest.conftest import register, rows

T0 = datetime(2026, 5, 1, 8, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(("readings", "expected"), [
    ([], []),
    ([Reading("a", "x", T0, 1)], [Reading("a", "x", T0, 1)]),
    # The newest of a series wins wherever it stands in the batch.
    ([Reading("a", "x", T0 + MINUTE, 2), Reading("a", "x", T0, 1)],
     [Reading("a", "x", T0 + MINUTE, 2)]),
    # Of two readings at the same time, the first (the one `readings` keeps).
    ([Reading("a", "x", T0, 1), Reading("a", "x", T0, 9)], [Reading("a", "x", T0, 1)]),
    # Series are device and metric together.
    ([Reading("a", "x", T0, 1), Reading("a", "y", T0, 2), Reading("b", "x", T0, 3)],
     [Reading("a", "x", T0, 1), Reading("a", "y", T0, 2), Reading("b", "x", T0, 3)]),
])
def test_newest_per_series(readings: list[Reading], expected: list[Reading]) -> None:
    assert newest_per_series(readings) == expected


def latest(database_url: str) -> dict[tuple[str, str], tuple[datetime, float]]:
    return {(d, m): (ts, v) for d, m, ts, v in rows(
        database_url, "SELECT device_id, metric, ts, value FROM latest_values")}


def test_writer_keeps_latest_values_and_late_data_never_overwrites(database_url: str) -> None:
    register(database_url, [("wm-1", "water_meter"), ("wm-2", "water_meter")])
    writer = Writer(database_url)
    try:
        writer.write(BatchPlan(readings=[
            Reading("wm-1", "total_m3", T0, 10.0), Reading("wm-1", "total_m3", T0 + MINUTE, 11.0),
            Reading("wm-1", "battery_v", T0, 3.6)]))
        assert latest(database_url) == {("wm-1", "total_m3"): (T0 + MINUTE, 11.0),
                                        ("wm-1", "battery_v"): (T0, 3.6)}
        # A late reading and a resend of the newest with another value (a duplicate, so not
        # stored) change nothing; another device's first reading is added.
        writer.write(BatchPlan(readings=[
            Reading("wm-1", "total_m3", T0 - MINUTE, 9.0),
            Reading("wm-1", "total_m3", T0 + MINUTE, 99.0),
            Reading("wm-2", "total_m3", T0, 5.0)]))
        assert latest(database_url) == {("wm-1", "total_m3"): (T0 + MINUTE, 11.0),
                                        ("wm-1", "battery_v"): (T0, 3.6),
                                        ("wm-2", "total_m3"): (T0, 5.0)}
        writer.write(BatchPlan(readings=[Reading("wm-1", "total_m3", T0 + 2 * MINUTE, 12.0)]))
        assert latest(database_url)[("wm-1", "total_m3")] == (T0 + 2 * MINUTE, 12.0)
    finally:
        writer.close()
    # It agrees with readings: each series' newest row, received in the same transaction.
    disagreeing = rows(database_url, """
        SELECT l.device_id, l.metric FROM latest_values l
        JOIN LATERAL (SELECT ts, value, received_at FROM readings r
                      WHERE r.device_id = l.device_id AND r.metric = l.metric
                      ORDER BY ts DESC LIMIT 1) r ON true
        WHERE (r.ts, r.value, r.received_at) IS DISTINCT FROM (l.ts, l.value, l.received_at)""")
    assert disagreeing == []


def test_a_failed_batch_leaves_latest_values_alone(database_url: str) -> None:
    register(database_url, [("wm-1", "water_meter")])
    writer = Writer(database_url)
    try:
        writer.write(BatchPlan(readings=[Reading("wm-1", "total_m3", T0, 10.0)]))
        # A NUL byte, which PostgreSQL text cannot hold, fails the whole transaction.
        with pytest.raises(psycopg.Error):
            writer.write(BatchPlan(readings=[Reading("wm-1", "total_m3", T0 + MINUTE, 11.0),
                                             Reading("wm\x00", "total_m3", T0, 1.0)]))
    finally:
        writer.close()
    assert latest(database_url) == {("wm-1", "total_m3"): (T0, 10.0)}


def test_merge_function_takes_rows_written_without_ingest(database_url: str) -> None:
    register(database_url, [("wm-1", "water_meter")])
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO readings (device_id, metric, ts, value) VALUES"
                     " ('wm-1', 'total_m3', %s, 1), ('wm-1', 'total_m3', %s, 2)",
                     (T0, T0 + MINUTE))
        conn.execute("SELECT village_merge_latest()")
        conn.execute("INSERT INTO readings (device_id, metric, ts, value) VALUES"
                     " ('wm-1', 'total_m3', %s, 0)", (T0 - MINUTE,))
        merged = conn.execute("SELECT village_merge_latest(now() - interval '1 hour')").fetchone()
    assert merged == (0,)
    assert latest(database_url) == {("wm-1", "total_m3"): (T0 + MINUTE, 2.0)}
