"""The hourly and daily rollups, kept by the worker's maintenance, agree with the raw readings."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devices.topics import Channel, topic
from ground.local import MosquittoServer
from ingest.settings import RetentionSettings
from tests.ingest.conftest import (
    Publisher,
    ingest_settings,
    register,
    rows,
    running_worker,
    scalar,
    wait_until,
)

# What each rollup must say, computed from the raw rows the straightforward way.
EXPECTED = """
SELECT device_id, metric, {bucket} AS bucket, count(*), min(value), max(value),
       round(avg(value)::numeric, 9), (array_agg(value ORDER BY ts))[1],
       (array_agg(value ORDER BY ts DESC))[1]
FROM readings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
ACTUAL = """
SELECT device_id, metric, bucket, count, min, max, round(avg::numeric, 9), first, last
FROM {table} ORDER BY 1, 2, 3
"""
HOURLY = EXPECTED.format(bucket="date_trunc('hour', ts)")
DAILY = EXPECTED.format(bucket="date_trunc('day', ts, 'Asia/Shanghai')")


def agree(database_url: str) -> bool:
    return rows(database_url, HOURLY) == rows(database_url, ACTUAL.format(table="readings_hourly")) \
        and rows(database_url, DAILY) == rows(database_url, ACTUAL.format(table="readings_daily"))


def test_rollups_agree_with_raw_readings_including_late_arrivals(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    devices = [f"wq-{n}" for n in range(3)]
    register(database_url, [(device, "water_quality") for device in devices])
    rng = random.Random(7)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix)
    settings.retention = RetentionSettings(rollup_refresh_s=0.3)
    with running_worker(settings) as worker:
        pub = Publisher(mosquitto.url)
        for device in devices:
            backlog = [{"ts": (start + timedelta(minutes=10 * i)).isoformat(),
                        "ph": round(rng.uniform(6, 9), 3),
                        "turbidity_ntu": round(rng.uniform(0, 3), 3)} for i in range(300)]
            pub.publish(topic(topic_prefix, device, Channel.TELEMETRY), backlog)
        pub.flush()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 1800,
                   what="the readings")
        wait_until(lambda: agree(database_url), what="the rollups to agree")
        # Late readings inside buckets already rolled up: the buckets are recomputed.
        late = [{"ts": (start + timedelta(minutes=10 * i + 5)).isoformat(), "ph": 14.0}
                for i in range(0, 300, 37)]
        pub.publish(topic(topic_prefix, devices[0], Channel.TELEMETRY), late)
        pub.close()
        wait_until(lambda: scalar(database_url, "SELECT max(max) FROM readings_daily") == 14.0
                   and agree(database_url), what="the rollups to take the late readings")
        assert worker.maintenance.holds_lock
    assert scalar(database_url, "SELECT count(*) FROM readings_hourly") >= 3 * 2 * 50


def test_the_refresh_keeps_new_rows_findable_by_their_storing_time(database_url: str) -> None:
    # After a burst the BRIN ranges of new pages are unsummarized (every read by received_at
    # scans them) and the planner's statistics know nothing of the new rows: the plain
    # path's refresh summarizes and analyzes, so reads by received_at use the index.
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone() \
                != ("plain",):
            pytest.skip("TimescaleDB keeps its own chunks' indexes and statistics")
        conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                     " SELECT format('wm-%s', i % 1000), 'total_m3',"
                     "  now() - make_interval(secs => i), i FROM generate_series(1, 200000) i")
        # The refresh reads the changes from the statistics, which sessions publish about a
        # second late: the next refresh, 15 s on, takes what one misses. Wait for them here.
        wait_until(lambda: scalar(database_url, _CHANGED) >= 200000, what="the statistics")
        conn.execute("SELECT village_refresh_rollups()")
        left = conn.execute(
            "SELECT sum(brin_summarize_new_values(i.indexrelid)) FROM pg_inherits h"
            " JOIN pg_index i ON i.indrelid = h.inhrelid JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am a ON a.oid = c.relam"
            " WHERE h.inhparent = 'readings'::regclass AND a.amname = 'brin'").fetchone()[0]  # type: ignore[index]
        assert left == 0, f"{left} page ranges were left unsummarized"
        assert scalar(database_url, _CHANGED) == 0, "a partition was left unanalyzed"


# Changes since the last analysis, over the readings partitions.
_CHANGED = """
SELECT coalesce(sum(s.n_mod_since_analyze), 0) FROM pg_stat_user_tables s
JOIN pg_inherits h ON h.inhrelid = s.relid WHERE h.inhparent = 'readings'::regclass
"""


def test_a_writer_held_open_across_a_refresh_is_rolled_up_by_the_next(database_url: str) -> None:
    # The refresh reads from where the last one stopped, which is never past the start of a
    # transaction still open: its rows, committed later, carry that start as received_at.
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone() \
                != ("plain",):
            pytest.skip("TimescaleDB's continuous aggregates have their own refresh")
        with psycopg.connect(database_url) as writer:
            writer.execute("INSERT INTO readings (device_id, metric, ts, value)"
                           " VALUES ('wm-late', 'total_m3', now() - interval '1 minute', 7)")
            time.sleep(0.2)
            conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                         " VALUES ('wm-other', 'total_m3', now() - interval '1 minute', 1)")
            conn.execute("SELECT village_refresh_rollups(interval '1 hour')")
            assert scalar(database_url, "SELECT count(*) FROM readings_hourly") == 1
            writer.commit()
        time.sleep(0.2)
        conn.execute("SELECT village_refresh_rollups(interval '1 hour')")
        assert rows(database_url, "SELECT device_id, max FROM readings_hourly ORDER BY 1") == [
            ("wm-late", 7.0), ("wm-other", 1.0)]
        # And with nothing open nor new, the next refresh reads nothing again (the overlap
        # made every refresh re-read minutes of rows).
        assert conn.execute("SELECT village_refresh_rollups(interval '1 hour')").fetchone() == (0,)
