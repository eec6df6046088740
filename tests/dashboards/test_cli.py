"""`village dashboards build` and `village dashboards check`."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from dashboards.catalogue import DASHBOARDS
from dashboards.provisioning import PASSWORD_VARIABLE
from village.cli import app

runner = CliRunner()


def test_build_writes_dashboards_and_provisioning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VILLAGE_DATABASE_URL", "postgresql://postgres:service-pw@db:5432/village")
    monkeypatch.setenv("VILLAGE_GRAFANA__DATASOURCE_DATABASE_URL",
                       "postgresql://grafana_reader:reader-pw@db:5432/village")
    result = runner.invoke(app, ["dashboards", "build", "--out", str(tmp_path), "--lang", "en",
                                 "--dashboards-path", "/var/lib/grafana/village"])
    assert result.exit_code == 0, result.output

    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(
        ["provisioning/datasources/village.yaml", "provisioning/dashboards/village.yaml"]
        + [f"dashboards/{uid}.json" for uid in DASHBOARDS]
    )
    datasources = yaml.safe_load((tmp_path / "provisioning/datasources/village.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == "village-pg" and source["type"] == "grafana-postgresql-datasource"
    assert source["url"] == "db:5432" and source["user"] == "grafana_reader"
    assert source["secureJsonData"] == {"password": f"${{{PASSWORD_VARIABLE}}}"}
    everything = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "reader-pw" not in everything and "service-pw" not in everything

    providers = yaml.safe_load((tmp_path / "provisioning/dashboards/village.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/village"
    assert provider["folderUid"] == "village"
    water = json.loads((tmp_path / "dashboards/village-water.json").read_text())
    assert water["uid"] == "village-water" and water["title"] == "Water operations"


def test_build_is_chinese_by_default(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    water = json.loads((tmp_path / "dashboards/village-water.json").read_text(encoding="utf-8"))
    assert water["title"] == "供水运行"
    source = yaml.safe_load((tmp_path / "provisioning/datasources/village.yaml").read_text())
    assert "secureJsonData" not in source["datasources"][0]  # the URL has no password


def test_check_runs_every_query_against_the_database(
    county_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VILLAGE_DATABASE_URL", county_url)
    result = runner.invoke(app, ["dashboards", "check"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert result.output.count("ok") >= 45


def test_check_reports_a_schema_that_lacks_what_panels_need(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE dead_letters RENAME TO dead_letters_moved")
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    result = runner.invoke(app, ["dashboards", "check"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and 'relation "dead_letters" does not exist' in result.output


def test_check_of_a_database_without_the_schema_says_to_migrate(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VILLAGE_DATABASE_URL", empty_database_url)
    result = runner.invoke(app, ["dashboards", "check"])
    assert result.exit_code == 78
    assert result.stderr.strip().endswith("has no schema: run village migrate")
