"""`dashboards push` against a real local HTTP server speaking Grafana's API."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dashboards.catalogue import build_all
from dashboards.i18n import Language
from dashboards.provisioning import datasource_model
from dashboards.push import PushError, PushReport, connect, push
from dashboards.settings import GrafanaSettings, parse_database_url
from ground.local import free_port
from tests.dashboards.grafana_server import fake_grafana
from village.cli import app

DATABASE = "postgresql://grafana_reader:reader-pw@db.example:5432/village"


def push_to(url: str, credential: str | tuple[str, str], language: Language = "zh") -> PushReport:
    settings = GrafanaSettings(url=url)
    endpoint = parse_database_url(DATABASE)
    return push(
        connect(url, credential, 5),
        url,
        settings.folder_uid,
        settings.folder_title,
        datasource_model(settings, endpoint, endpoint.password),
        build_all(language, settings.datasource_uid),
    )


def test_push_creates_then_updates_by_uid_never_duplicating() -> None:
    with fake_grafana() as (url, grafana):
        first = push_to(url, grafana.token)
        assert first.folder == "created" and first.datasource == "created"
        assert set(first.dashboards.values()) == {"created"}
        second = push_to(url, grafana.basic, language="en")
        assert second.folder == "unchanged" and second.datasource == "updated"
        assert set(second.dashboards.values()) == {"updated"}

        assert list(grafana.folders) == ["village"]
        assert list(grafana.datasources) == ["village-pg"]
        assert sorted(grafana.dashboards) == sorted(b.uid for b in build_all("en", "x"))
        for saved in grafana.dashboards.values():
            assert saved["version"] == 2 and saved["folderUid"] == "village"
        water = grafana.dashboards["village-water"]["dashboard"]
        assert water["title"] == "Water operations"  # the second push's language won
        source = grafana.datasources["village-pg"]
        assert source["type"] == "grafana-postgresql-datasource"
        assert source["url"] == "db.example:5432" and source["user"] == "grafana_reader"
        assert source["jsonData"]["database"] == "village"
        assert source["secureJsonData"] == {"password": "reader-pw"}


def test_a_renamed_folder_is_updated_in_place() -> None:
    with fake_grafana() as (url, grafana):
        push_to(url, grafana.token)
        grafana.folders["village"]["title"] = "someone renamed it"
        report = push_to(url, grafana.token)
        assert report.folder == "updated"
        assert grafana.folders["village"]["title"] == GrafanaSettings().folder_title


def test_a_bad_token_is_a_clear_error_without_the_token() -> None:
    with fake_grafana() as (url, grafana):
        with pytest.raises(PushError) as caught:
            push_to(url, "glsa_wrong_secret_value")
        message = str(caught.value)
        assert "401" in message and "VILLAGE_GRAFANA__TOKEN" in message and url in message
        assert "glsa_wrong_secret_value" not in message
        assert grafana.dashboards == {} and grafana.folders == {}


def test_a_wrong_url_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(PushError, match=r"cannot reach Grafana at http://127\.0\.0\.1:\d+"):
        push_to(url, "token")


def test_a_url_that_is_not_grafana_is_a_clear_error() -> None:
    with fake_grafana() as (url, grafana):
        with pytest.raises(PushError, match="404"):
            push_to(url + "/not-grafana", grafana.token)


def test_the_push_command(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    with fake_grafana() as (url, grafana):
        monkeypatch.setenv("VILLAGE_GRAFANA__URL", url)
        monkeypatch.setenv("VILLAGE_DATABASE_URL", DATABASE)
        monkeypatch.delenv("VILLAGE_DEVELOPMENT", raising=False)
        refused = runner.invoke(app, ["dashboards", "push"])
        assert refused.exit_code == 2, refused.output
        assert "VILLAGE_GRAFANA__TOKEN" in refused.output and grafana.requests == []

        monkeypatch.setenv("VILLAGE_GRAFANA__TOKEN", grafana.token)
        pushed = runner.invoke(app, ["dashboards", "push", "--lang", "en"])
        assert pushed.exit_code == 0, pushed.output
        assert "dashboard village-health created" in pushed.output
        assert grafana.dashboards["village-health"]["dashboard"]["title"].startswith("Device health")

        monkeypatch.setenv("VILLAGE_GRAFANA__TOKEN", "glsa_not_the_right_one")
        failed = runner.invoke(app, ["dashboards", "push"])
        assert failed.exit_code == 1 and "401" in failed.output
        assert "glsa_not_the_right_one" not in failed.output
