"""Purge and retention are complete on whichever storage path the test server gives: a
purged device leaves no row in any relation of the SQL surface (TimescaleDB's continuous
aggregates included), and dead letters, alert history and broadcast records expire by their
own settings."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from devices.store import remove_device
from ground.migrate import RecordRetention, record_retention_config
from ingest.maintenance import AUTOVACUUM_OFF, Maintenance
from ingest.settings import RetentionSettings
from village.schema import migrate

# docs/sql.md: every relation that holds rows about a device.
SURFACE = ("devices", "readings", "events", "device_status", "dead_letters", "readings_hourly",
           "readings_daily", "latest_values")


def storage_of(conn: psycopg.Connection) -> str:
    """The storage path of the database (`village_meta`)."""
    row = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
    assert row is not None
    return str(row[0])


def count_rows(conn: psycopg.Connection, relation: str, device: str | None = None) -> int:
    """Rows of a relation (about one device, if given)."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(relation))
    if device is not None:
        query += sql.SQL(" WHERE device_id = {}").format(sql.Literal(device))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else -1


def materialize_rollups(database_url: str) -> None:
    """Bring the rollups up to date over all time."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if storage_of(conn) == "plain":
            conn.execute("SELECT village_refresh_rollups()")
            return
        for rollup in ("readings_hourly", "readings_daily"):
            conn.execute("CALL refresh_continuous_aggregate(%s, NULL, NULL)", (rollup,))


def run_rollup_refresh(database_url: str) -> None:
    """One pass of the path's own refresh (on TimescaleDB the policies, which look back only
    32 days)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if storage_of(conn) == "plain":
            conn.execute("SELECT village_refresh_rollups()")
            return
        jobs = conn.execute("SELECT job_id FROM timescaledb_information.jobs"
                            " WHERE proc_name = 'policy_refresh_continuous_aggregate'").fetchall()
        assert len(jobs) == 2
        for (job,) in jobs:
            conn.execute("CALL run_job(%s)", (job,))


def _add_history(conn: psycopg.Connection, device: str) -> None:
    conn.execute("INSERT INTO devices (device_id, kind, village) VALUES (%s, 'water_meter', 'v')",
                 (device,))
    conn.execute("SELECT village_ensure_partitions(now() - interval '3 months', now())"
                 if storage_of(conn) == "plain" else "SELECT 1")
    # Old buckets (outside TimescaleDB's 32-day refresh window) and fresh ones.
    conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                 " SELECT %s, 'total_m3', now() - make_interval(days => d), d"
                 " FROM unnest(ARRAY[60, 45, 2, 0]) AS d", (device,))
    conn.execute("INSERT INTO events (device_id, ts, type, severity, body)"
                 " VALUES (%s, now() - interval '50 days', 'leak', 'major', '{}')", (device,))
    conn.execute("INSERT INTO device_presence (device_id, last_seen) VALUES (%s, now())", (device,))
    conn.execute("SELECT village_merge_latest()")
    conn.execute("INSERT INTO dead_letters (topic, device_id, reason, detail, payload,"
                 " payload_bytes) VALUES ('t', %s, 'r', 'd', '', 0)", (device,))


def test_a_purged_device_leaves_no_row_in_the_sql_surface(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        _add_history(conn, "wm-gone")
        _add_history(conn, "wm-kept")
    materialize_rollups(database_url)
    with psycopg.connect(database_url) as conn:
        for relation in SURFACE:
            for device in ("wm-gone", "wm-kept"):
                assert count_rows(conn, relation, device) > 0, (relation, device)
        deleted = remove_device(conn, "wm-gone", "test")
    assert deleted["rollups"] > 0
    run_rollup_refresh(database_url)  # a later refresh brings nothing back
    with psycopg.connect(database_url) as conn:
        for relation in SURFACE:
            assert count_rows(conn, relation, "wm-gone") == 0, relation
            assert count_rows(conn, relation, "wm-kept") > 0, relation


def _add_records(conn: psycopg.Connection, age: timedelta, tag: str) -> None:
    conn.execute("INSERT INTO dead_letters (received_at, topic, reason, detail, payload,"
                 " payload_bytes) VALUES (now() - %s, %s, 'r', 'd', '', 0)", (age, tag))
    alert = conn.execute(
        "INSERT INTO alerts (fingerprint, rule, condition, severity, state, summary, started_at,"
        " fired_at, resolved_at) VALUES (%s, 'r', 'threshold', 'minor', 'resolved', %s,"
        " now() - %s, now() - %s, now() - %s) RETURNING id", (tag, tag, age, age, age)).fetchone()
    assert alert is not None
    conn.execute("INSERT INTO alert_transitions (alert_id, at, to_state) VALUES (%s, now() - %s,"
                 " 'resolved')", (alert[0], age))
    conn.execute("INSERT INTO notifications (alert_ids, group_key, action, level, receiver,"
                 " channel, status, attempts, created_at) VALUES (ARRAY[%s]::bigint[], %s,"
                 " 'firing', 0, 'r', 'console', 'sent', 1, now() - %s)", (alert[0], tag, age))
    conn.execute("INSERT INTO broadcasts (broadcast_id, created_at, created_by, creator_role,"
                 " priority, text, repeat, expires_at, scope, scope_label) VALUES"
                 " (%s, now() - %s, 'op', 'admin', 'normal', 'hi', 1, now() - %s + interval"
                 " '1 hour', '{}', 'county')", (tag, age, age))
    conn.execute("INSERT INTO broadcast_deliveries (broadcast_id, device_id, priority_rank,"
                 " expires_at, updated_at) VALUES (%s, 'spk-1', 0, now(), now())", (tag,))
    conn.execute("INSERT INTO broadcast_audit (at, actor, actor_role, action, broadcast_id)"
                 " VALUES (now() - %s, 'op', 'admin', 'broadcast', %s)", (age, tag))


RECORDS = ("dead_letters", "alerts", "alert_transitions", "notifications", "broadcasts",
           "broadcast_deliveries", "broadcast_audit")


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {table: count_rows(conn, table) for table in RECORDS}


def test_records_expire_by_their_own_retention(database_url: str) -> None:
    # Dead letters kept 10 days, alert history 100, broadcasts 1000.
    retention = RetentionSettings(dead_letter_days=10, alert_history_days=100, broadcast_days=1000,
                                  rollup_refresh_s=0.05, maintenance_interval_s=0.05)
    records = RecordRetention(timedelta(days=10), timedelta(days=100), timedelta(days=1000))
    with psycopg.connect(database_url) as conn:
        _add_records(conn, timedelta(days=5), "fresh")
        _add_records(conn, timedelta(days=50), "month-old")
        _add_records(conn, timedelta(days=500), "year-old")
        _add_records(conn, timedelta(days=5000), "ancient")
        conn.execute("INSERT INTO alerts (fingerprint, rule, condition, severity, state, summary,"
                     " started_at, fired_at) VALUES ('open', 'r', 'threshold', 'minor', 'firing',"
                     " 'still open', now() - interval '4000 days', now() - interval '4000 days')")
        storage = storage_of(conn)
    if storage == "plain":
        stop = threading.Event()
        maintenance = Maintenance(database_url, retention, stop)
        maintenance.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with psycopg.connect(database_url) as conn:
                if _counts(conn)["dead_letters"] == 1:
                    break
            time.sleep(0.1)
        stop.set()
        maintenance.join()
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT alter_job(job_id, config => %s) FROM timescaledb_information.jobs"
                         " WHERE proc_name = 'village_prune_records_job'",
                         (json.dumps(record_retention_config(records)),))
            job = conn.execute("SELECT job_id FROM timescaledb_information.jobs"
                               " WHERE proc_name = 'village_prune_records_job'").fetchone()
            assert job is not None
            conn.execute("CALL run_job(%s)", (job[0],))
    with psycopg.connect(database_url) as conn:
        counts = _counts(conn)
        open_alert = conn.execute("SELECT count(*) FROM alerts WHERE state = 'firing'").fetchone()
    assert counts == {"dead_letters": 1, "alerts": 3, "alert_transitions": 2, "notifications": 2,
                      "broadcasts": 3, "broadcast_deliveries": 3, "broadcast_audit": 3}
    assert open_alert == (1,)


def test_migrate_schedules_every_retention_from_the_settings(empty_database_url: str) -> None:
    records = RecordRetention(timedelta(days=7), timedelta(days=70), timedelta(days=700))
    migrate(empty_database_url, timedelta(days=400), records=records)
    with psycopg.connect(empty_database_url) as conn:
        if storage_of(conn) != "timescale":
            pytest.skip("the plain path's retention runs in the ingest maintenance (above)")
        config = conn.execute("SELECT config FROM timescaledb_information.jobs"
                              " WHERE proc_name = 'village_prune_records_job'").fetchall()
        raw = conn.execute("SELECT hypertable_name, config ->> 'drop_after'"
                           " FROM timescaledb_information.jobs"
                           " WHERE proc_name = 'policy_retention' ORDER BY 1").fetchall()
    assert config == [(record_retention_config(records),)]
    assert raw == [("events", "400 days"), ("readings", "400 days")]


def test_maintenance_says_when_the_server_runs_without_autovacuum(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT current_setting('autovacuum')").fetchone()
    lines: list[str] = []
    stop = threading.Event()
    maintenance = Maintenance(database_url, RetentionSettings(rollup_refresh_s=0.05), stop,
                              lines.append)
    maintenance.start()
    deadline = time.monotonic() + 20
    while not maintenance.holds_lock and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    stop.set()
    maintenance.join()
    assert maintenance.holds_lock
    assert (AUTOVACUUM_OFF in lines) == (row == ("off",))
