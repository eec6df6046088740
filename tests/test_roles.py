"""Least privilege: each service's login (from `village db roles`) can do its job and cannot
do another's. Ingest cannot delete devices; Grafana cannot write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from typer.testing import CliRunner

from alerting.cycles import _horizon
from dashboards.catalogue import build_all
from dashboards.check import check_queries
from ground.roles import READER, login_name
from village.cli import app

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Logins = dict[str, str]


@pytest.fixture
def logins(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Logins:
    """Each service's database URL, as `village db roles` writes it into its directory."""
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    monkeypatch.setenv("GRAFANA_DB_PASSWORD", "reader-secret")
    result = CliRunner().invoke(app, ["db", "roles", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    urls = {}
    for service in ("ingest", "alerting", "broadcast", "api", "access"):
        env = tmp_path / service / "db.env"
        assert env.stat().st_mode & 0o077 == 0, "only the service's own user reads it"
        line = next(x for x in env.read_text().splitlines() if x.startswith("VILLAGE_DATABASE_URL="))
        urls[service] = line.partition("=")[2]
    urls["grafana"] = database_url.replace("postgres@", f"{login_name(READER)}:reader-secret@", 1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO devices (device_id, kind, village) VALUES"
                     " ('wm-1', 'water_meter', 'v'), ('spk-1', 'speaker', 'v')")
    return urls


def refused(url: str, *statements: str) -> None:
    """Each statement is refused to this login for want of privilege."""
    for statement in statements:
        with psycopg.connect(url, autocommit=True) as conn, pytest.raises(
                (errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)):
            conn.execute(statement)


def insert_broadcast(conn: psycopg.Connection, broadcast_id: str) -> None:
    """A broadcast row, as the broadcast service writes it."""
    conn.execute("INSERT INTO broadcasts (broadcast_id, created_at, created_by, creator_role,"
                 " priority, text, repeat, expires_at, scope, scope_label) VALUES (%s, %s,"
                 " 'op', 'admin', 'alert', 'hi', 1, %s, '{}', 'county')",
                 (broadcast_id, NOW, NOW))


def test_ingest_writes_telemetry_and_deletes_nothing(logins: Logins) -> None:
    url = logins["ingest"]
    with psycopg.connect(url) as conn:
        conn.execute("SELECT device_id, kind FROM devices").fetchall()
        conn.execute("INSERT INTO readings (device_id, metric, ts, value) VALUES"
                     " ('wm-1', 'total_m3', %s, 1)", (NOW,))
        conn.execute("INSERT INTO events (device_id, ts, type, severity, body) VALUES"
                     " ('wm-1', %s, 'leak', 'major', '{}')", (NOW,))
        conn.execute("INSERT INTO device_presence (device_id, last_seen) VALUES ('wm-1', %s)"
                     " ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen", (NOW,))
        conn.execute("INSERT INTO dead_letters (topic, reason, detail, payload, payload_bytes)"
                     " VALUES ('t', 'r', 'd', '', 0)")
        conn.execute("INSERT INTO pending_devices VALUES ('new-1', %s, %s, 't', 1)", (NOW, NOW))
        storage = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
        if storage == ("plain",):  # the maintenance runs as ingest on this path
            conn.execute("SELECT village_refresh_rollups()")
            conn.execute("SELECT village_ensure_partitions(now(), now() + interval '2 months')")
            conn.execute("SELECT village_apply_retention(interval '730 days')")
            conn.execute("SELECT village_prune_records(interval '1 day', interval '1 day',"
                         " interval '1 day')")
    refused(url, "DELETE FROM devices WHERE device_id = 'wm-1'",
            "DELETE FROM readings",
            "UPDATE devices SET village = 'x'",
            "INSERT INTO alerts (fingerprint, rule, condition, severity, state, summary,"
            " started_at, fired_at) VALUES ('f', 'r', 'c', 'minor', 'firing', 's',"
            " now(), now())",
            "SELECT secret_hash FROM devices",
            "SELECT * FROM api_tokens",
            "DROP TABLE readings",
            "SELECT village_forget_device_rollups('wm-1')",
            "UPDATE device_command_deliveries SET state = 'done'",
            "SELECT secret FROM broker_access_queue")


def test_alerting_keeps_its_alerts_and_starts_broadcasts_only(logins: Logins) -> None:
    url = logins["alerting"]
    with psycopg.connect(url) as conn:
        alert = conn.execute(
            "INSERT INTO alerts (fingerprint, rule, condition, severity, state, summary,"
            " started_at, fired_at) VALUES ('f', 'r', 'threshold', 'minor', 'firing', 's', %s,"
            " %s) RETURNING id", (NOW, NOW)).fetchone()
        assert alert is not None
        conn.execute("INSERT INTO alert_transitions (alert_id, at, to_state) VALUES (%s, %s,"
                     " 'firing')", (alert[0], NOW))
        conn.execute("INSERT INTO notifications (alert_ids, group_key, action, level, receiver,"
                     " channel, status, attempts) VALUES (ARRAY[%s]::bigint[], 'g', 'firing', 0,"
                     " 'r', 'console', 'sent', 1)", (alert[0],))
        conn.execute("UPDATE alerting_watermarks SET position = %s", (NOW,))
        insert_broadcast(conn, "b1")
        conn.execute("SELECT * FROM readings, events, device_status LIMIT 1").fetchall()
    refused(url, "INSERT INTO readings (device_id, metric, ts, value) VALUES"
            " ('wm-1', 'x', now(), 1)",
            "DELETE FROM devices",
            "DELETE FROM broadcasts",
            "INSERT INTO api_tokens (name, token_hash, role, created_by) VALUES"
            " ('x', repeat('a', 64), 'admin', 'x')")


def test_broadcast_keeps_its_broadcasts_only(logins: Logins) -> None:
    url = logins["broadcast"]
    with psycopg.connect(url) as conn:
        insert_broadcast(conn, "b2")
        conn.execute("INSERT INTO broadcast_deliveries (broadcast_id, device_id, priority_rank,"
                     " expires_at, updated_at) VALUES ('b2', 'spk-1', 0, %s, %s)", (NOW, NOW))
        conn.execute("UPDATE broadcast_deliveries SET state = 'sent' WHERE broadcast_id = 'b2'")
        conn.execute("INSERT INTO device_commands (command_id, created_at, created_by,"
                     " creator_role, why, op, args, expires_at, selection) VALUES ('c1', %s, 'op',"
                     " 'admin', 'leak', 'set_valve', '{}', %s, 'wm-1')", (NOW, NOW))
        conn.execute("INSERT INTO device_command_deliveries (command_id, device_id, expires_at,"
                     " updated_at) VALUES ('c1', 'wm-1', %s, %s)", (NOW, NOW))
        conn.execute("UPDATE device_command_deliveries SET state = 'sent'")
        conn.execute("INSERT INTO broadcast_groups VALUES ('school', 'spk-1')")
        conn.execute("INSERT INTO dead_letters (topic, reason, detail, payload, payload_bytes)"
                     " VALUES ('t', 'r', 'd', '', 0)")
        conn.execute("SELECT * FROM broadcast_report, device_status LIMIT 1").fetchall()
    refused(url, "UPDATE alerts SET state = 'resolved'",
            "DELETE FROM devices",
            "INSERT INTO events (device_id, ts, type, severity, body) VALUES"
            " ('wm-1', now(), 'x', 'minor', '{}')")


def test_api_manages_the_registry_tokens_and_acknowledgements(logins: Logins) -> None:
    url = logins["api"]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO devices (device_id, kind, village) VALUES"
                     " ('wm-2', 'water_meter', 'v')")
        conn.execute("UPDATE devices SET secret_hash = NULL, name = 'n' WHERE device_id = 'wm-2'")
        conn.execute("INSERT INTO device_changes (device_id, action, actor) VALUES"
                     " ('wm-2', 'created', 'api')")
        conn.execute("INSERT INTO api_tokens (name, token_hash, role, created_by) VALUES"
                     " ('t1', repeat('a', 64), 'admin', 'x')")
        conn.execute("SELECT token_hash FROM api_tokens").fetchall()
        conn.execute("INSERT INTO api_audit (actor, actor_role, action, target) VALUES"
                     " ('x', 'admin', 'a', 't')")
        conn.execute("INSERT INTO silences (matchers, starts_at, ends_at, created_by) VALUES"
                     " ('{}', %s, %s, 'x')", (NOW, NOW + timedelta(hours=1)))
        conn.execute("SELECT * FROM readings_daily, readings_hourly, dead_letters LIMIT 1")
    refused(url, "INSERT INTO readings (device_id, metric, ts, value) VALUES"
            " ('wm-1', 'x', now(), 1)",
            "DELETE FROM readings",
            "DELETE FROM alerts",
            "UPDATE service_accounts SET secret_hash = 'x'",
            "CREATE TABLE mine (x integer)")


def test_access_applies_the_broker_queue_and_changes_nothing_else(logins: Logins,
                                                                 database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO broker_access_queue (device_id, action) VALUES ('wm-1', 'revoke')")
    with psycopg.connect(logins["access"]) as conn:
        assert conn.execute("SELECT device_id FROM devices WHERE lifecycle = 'active'"
                            " AND secret_hash IS NOT NULL").fetchall() == []
        assert conn.execute("SELECT device_id, action FROM broker_access_queue").fetchall() == [
            ("wm-1", "revoke")]
        conn.execute("DELETE FROM broker_access_queue")
    refused(logins["access"],
            "INSERT INTO broker_access_queue (device_id, action) VALUES ('wm-1', 'revoke')",
            "UPDATE devices SET secret_hash = NULL",
            "DELETE FROM devices",
            "SELECT secret_hash FROM service_accounts",
            "INSERT INTO readings (device_id, metric, ts, value) VALUES ('wm-1', 'x', now(), 1)")
    refused(logins["ingest"], "SELECT secret_hash FROM devices")


def test_grafana_reads_every_panel_and_cannot_write(logins: Logins) -> None:
    url = logins["grafana"]
    with psycopg.connect(url) as conn:
        storage = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
        built = build_all("en", "village-pg")
        results = check_queries(conn, built, NOW - timedelta(days=7), NOW,
                                timescaledb=storage == ("timescale",))
    assert len(results) > 45
    assert [(r.dashboard, r.panel, r.error) for r in results if r.error] == []
    refused(url, "INSERT INTO dead_letters (topic, reason, detail, payload, payload_bytes)"
            " VALUES ('t', 'r', 'd', '', 0)",
            "DELETE FROM devices",
            "SELECT secret_hash FROM devices",
            "SELECT * FROM service_accounts",
            "SELECT secret FROM broker_access_queue",
            "SELECT * FROM api_tokens",
            "SELECT password_hash FROM console_users",
            "SELECT csrf_token FROM console_sessions")


def test_alerting_sees_when_ingests_open_transaction_began(logins: Logins) -> None:
    # The streaming pass reads only rows stored before the oldest open writer began, so a
    # commit landing after the read is never passed over. As its own login it must see the
    # ingest login's transactions: PostgreSQL shows another role's xact_start only to
    # members of pg_read_all_stats.
    with psycopg.connect(logins["ingest"]) as ingest:
        began = ingest.execute("SELECT now()").fetchone()
        ingest.execute("INSERT INTO readings (device_id, metric, ts, value)"
                       " VALUES ('wm-1', 'total_m3', now(), 1)")
        with psycopg.connect(logins["alerting"], autocommit=True) as alerting:
            horizon = _horizon(alerting)
        assert began is not None and horizon <= began[0]
        ingest.rollback()
