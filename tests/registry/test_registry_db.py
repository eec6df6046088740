"""The registry against a real database: import, re-import, secrets, lifecycle, approval."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psycopg
from psycopg import sql

from devices.credentials import verify_secret
from tests.registry.conftest import Village, registry_csv

FIVE_FAULTS = """device_id,kind,village,latitude,installed_on,gateway_id
gw-0001,gateway,东村,,,
wm 1,water_meter,东村,,,
wm-0002,toaster,东村,,,
wm-0003,water_meter,东村,95,,
wm-0004,water_meter,东村,,yesterday,
wm-0005,water_meter,东村,,,gw-9999
wm-0006,water_meter,东村,,,gw-0001
"""


def _count(url: str, query: str = "SELECT count(*) FROM devices") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def _secrets(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as handle:
        return {row["device_id"]: row["secret"] for row in csv.DictReader(handle)}


def test_15000_rows_import_with_secrets_stored_only_hashed(
        village: Village, database_url: str, tmp_path: Path) -> None:
    file = tmp_path / "county.csv"
    file.write_text(registry_csv(15_000, gateways=50), encoding="utf-8")
    secrets_out = tmp_path / "secrets.csv"
    result = village("devices", "import", str(file), "--secrets-out", str(secrets_out))
    assert result.exit_code == 0, result.output
    assert "15050 added, 0 updated, 0 unchanged" in result.stderr
    assert _count(database_url) == 15_050
    assert _count(database_url, "SELECT count(*) FROM devices WHERE gateway_id IS NOT NULL"
                  " AND tags ? '户号' AND latitude IS NOT NULL") == 15_000
    secrets = _secrets(secrets_out)
    assert len(secrets) == 15_050
    assert oct(secrets_out.stat().st_mode & 0o777) == "0o600"
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT secret_hash FROM devices WHERE device_id = 'wm-000123'"
                              ).fetchone()
        assert stored is not None and verify_secret(secrets["wm-000123"], stored[0])
        # The secret itself is nowhere in the registry, its log or the service accounts.
        for table in ("devices", "device_changes", "service_accounts"):
            leaked = conn.execute(
                sql.SQL("SELECT count(*) FROM {} t WHERE t::text LIKE %s").format(
                    sql.Identifier(table)), (f"%{secrets['wm-000123']}%",)).fetchone()
            assert leaked == (0,)


def test_a_file_with_five_faults_reports_all_five_and_imports_none(
        village: Village, database_url: str, tmp_path: Path) -> None:
    file = tmp_path / "faults.csv"
    file.write_text(FIVE_FAULTS, encoding="utf-8")
    result = village("devices", "import", str(file))
    assert result.exit_code == 1
    reported = [line for line in result.stderr.splitlines() if ": line " in line]
    assert [line.split(": line ")[1].split(" ")[0].rstrip(":") for line in reported] == [
        "3", "4", "5", "6", "7"]
    assert "5 problems; nothing imported" in result.stderr
    assert _count(database_url) == 0
    skipped = village("devices", "import", str(file), "--skip-invalid")
    assert skipped.exit_code == 0, skipped.output
    assert "2 added" in skipped.stderr and "5 problems skipped" in skipped.stderr
    assert _count(database_url) == 2


def test_reimport_updates_in_place_and_issues_secrets_only_to_new_devices(
        village: Village, database_url: str, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(registry_csv(3, gateways=1), encoding="utf-8")
    assert village("devices", "import", str(first), "--secrets-out",
                   str(tmp_path / "s1.csv")).exit_code == 0
    old = _secrets(tmp_path / "s1.csv")
    second = tmp_path / "second.csv"
    # Fewer columns: the ones the file leaves out keep their values.
    second.write_text("device_id,kind,village,grid\n"
                      "wm-000000,water_meter,西村,\n"  # moved, grid cleared
                      "wm-000001,water_meter,东村,1组\n"  # unchanged
                      "wm-000009,water_meter,西村,3组\n", encoding="utf-8")  # new
    result = village("devices", "import", str(second), "--secrets-out", str(tmp_path / "s2.csv"))
    assert result.exit_code == 0, result.output
    assert "1 added, 1 updated, 1 unchanged" in result.stderr
    assert set(_secrets(tmp_path / "s2.csv")) == {"wm-000009"}
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT village, grid, name, gateway_id, secret_hash FROM devices"
                           " WHERE device_id = 'wm-000000'").fetchone()
        assert row is not None
        assert row[:4] == ("西村", None, "用户0的水表", "gw-0000")
        assert verify_secret(old["wm-000000"], row[4])
    again = village("devices", "import", str(second), "--secrets-out", str(tmp_path / "s2.csv"))
    assert again.exit_code == 1 and "exists" in again.stderr


def test_import_without_secrets_out_leaves_new_devices_without_a_login(
        village: Village, database_url: str, tmp_path: Path) -> None:
    file = tmp_path / "plain.csv"
    file.write_text(registry_csv(2), encoding="utf-8")
    result = village("devices", "import", str(file))
    assert "2 devices have no secret yet" in result.stderr
    assert _count(database_url, "SELECT count(*) FROM devices WHERE secret_hash IS NULL") == 2
    secret = village("devices", "rotate-secret", "wm-000001").stdout.strip()
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT secret_hash FROM devices WHERE device_id = 'wm-000001'"
                           ).fetchone()
    assert row is not None and verify_secret(secret, row[0])


def test_add_show_list_filters_and_export_round_trip(village: Village, database_url: str,
                                                     tmp_path: Path) -> None:
    assert village("devices", "add", "gw-a1", "--kind", "gateway", "--village", "东村").exit_code == 0
    added = village("devices", "add", "wm-a1", "--kind", "water_meter", "--village", "东村",
                    "--township", "城关镇", "--grid", "一组", "--gateway", "gw-a1",
                    "--tags", "户主=张三", "--latitude", "34.5")
    assert added.exit_code == 0, added.output
    assert len(added.stdout.strip()) == 32
    again = village("devices", "add", "wm-a1", "--kind", "water_meter", "--village", "东村")
    assert again.exit_code == 1 and "already registered" in again.stderr
    bad = village("devices", "add", "wm-a2", "--kind", "water_meter", "--village", "东村",
                  "--gateway", "wm-a1")
    assert bad.exit_code == 1 and "is not a gateway" in bad.stderr
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO device_presence (device_id, last_seen, reported_state, firmware)"
                     " VALUES ('wm-a1', now(), 'online', '1.2.3')")
    shown = village("devices", "show", "wm-a1").stdout
    assert "城关镇" in shown and "gw-a1" in shown and "created by cli:" in shown
    assert "firmware: 1.2.3" in shown and "online: True" in shown
    listed = json.loads(village("devices", "list", "--grid", "一组", "--format", "json").stdout)
    assert [d["device_id"] for d in listed] == ["wm-a1"]
    assert listed[0]["tags"] == {"户主": "张三"} and "secret_hash" not in listed[0]
    assert listed[0]["firmware"] == "1.2.3"  # as the device last reported it
    assert "wm-a1" in village("devices", "list", "--kind", "water_meter").stdout
    exported = village("devices", "export").stdout
    file = tmp_path / "export.csv"
    file.write_text(exported, encoding="utf-8")
    reimported = village("devices", "import", str(file))
    assert "0 added, 0 updated, 2 unchanged" in reimported.stderr
    assert village("devices", "show", "nobody").exit_code == 1


def test_retire_keeps_history_and_remove_purge_deletes_it(
        village: Village, database_url: str) -> None:
    for device in ("wm-r1", "wm-r2"):
        village("devices", "add", device, "--kind", "water_meter", "--village", "东村")
    with psycopg.connect(database_url) as conn:
        for device in ("wm-r1", "wm-r2"):
            conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                         " VALUES (%s, 'total_m3', now(), 1)", (device,))
            conn.execute("INSERT INTO dead_letters (topic, device_id, reason, detail, payload,"
                         " payload_bytes) VALUES ('t', %s, 'r', 'd', '', 0)", (device,))
    assert village("devices", "retire", "wm-r1").exit_code == 0
    assert "already retired" in village("devices", "retire", "wm-r1").stderr
    listed = json.loads(village("devices", "list", "--lifecycle", "retired", "--format",
                                "json").stdout)
    assert [d["device_id"] for d in listed] == ["wm-r1"] and listed[0]["retired_at"]
    assert _count(database_url, "SELECT count(*) FROM readings WHERE device_id = 'wm-r1'") == 1

    assert village("devices", "remove", "wm-r2").exit_code == 2  # --purge is required
    declined = village("devices", "remove", "wm-r2", "--purge", input="n\n")
    assert declined.exit_code == 1 and _count(database_url) == 2
    removed = village("devices", "remove", "wm-r2", "--purge", "--yes")
    assert removed.exit_code == 0, removed.output
    assert "1 readings" in removed.stderr and "1 dead_letters" in removed.stderr
    assert _count(database_url, "SELECT count(*) FROM readings WHERE device_id = 'wm-r2'") == 0
    assert _count(database_url, "SELECT count(*) FROM dead_letters WHERE device_id = 'wm-r2'") == 0
    assert _count(database_url, "SELECT count(*) FROM readings WHERE device_id = 'wm-r1'") == 1
    assert _count(database_url, "SELECT count(*) FROM device_changes"
                                " WHERE device_id = 'wm-r2' AND action = 'removed'") == 1


def test_pending_devices_are_approved_with_kind_and_place(
        village: Village, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO pending_devices VALUES"
                     " ('cam-new', now() - interval '1 hour', now(), 'sv/cam-new/status', 7)")
    assert "cam-new" in village("devices", "pending").stdout
    not_pending = village("devices", "approve", "cam-x", "--kind", "camera", "--village", "东村")
    assert not_pending.exit_code == 1 and "not pending" in not_pending.stderr
    bad = village("devices", "approve", "cam-new", "--kind", "toaster", "--village", "东村")
    assert bad.exit_code == 1 and _count(database_url, "SELECT count(*) FROM pending_devices") == 1
    approved = village("devices", "approve", "cam-new", "--kind", "camera", "--village", "东村",
                       "--site", "十字路口")
    assert approved.exit_code == 0, approved.output
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT kind, site, secret_hash FROM devices"
                           " WHERE device_id = 'cam-new'").fetchone()
        assert row is not None and row[:2] == ("camera", "十字路口")
        assert verify_secret(approved.stdout.strip(), row[2])
        assert conn.execute("SELECT count(*) FROM pending_devices").fetchone() == (0,)


def test_a_gateway_with_devices_cannot_be_turned_into_something_else(
        village: Village, database_url: str, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(registry_csv(2, gateways=1), encoding="utf-8")
    assert village("devices", "import", str(first)).exit_code == 0
    second = tmp_path / "second.csv"
    second.write_text("device_id,kind,village\ngw-0000,water_meter,东村\n", encoding="utf-8")
    result = village("devices", "import", str(second))
    assert result.exit_code == 1
    assert "wm-000000 would hang off gw-0000, which would no longer be a gateway" in result.stderr
    assert _count(database_url, "SELECT count(*) FROM devices WHERE kind = 'gateway'") == 1
