"""Grafana settings: no working default secret outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dashboards.settings import (
    DEVELOPMENT_LOGIN,
    GrafanaCredentialsError,
    GrafanaSettings,
    parse_database_url,
)
from village.settings import load_settings


def test_no_credentials_outside_development() -> None:
    with pytest.raises(GrafanaCredentialsError, match="VILLAGE_GRAFANA__TOKEN"):
        GrafanaSettings().credential(development=False)
    assert GrafanaSettings().credential(development=True) == DEVELOPMENT_LOGIN


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"token": "glsa_x"}, "glsa_x"),
        ({"user": "ops", "password": "pw"}, ("ops", "pw")),
        ({"token": "glsa_x", "user": "ops", "password": "pw"}, "glsa_x"),
    ],
)
def test_configured_credentials_win(fields: dict[str, str], expected: object) -> None:
    settings = GrafanaSettings(**fields)
    assert settings.credential(development=False) == expected
    assert settings.credential(development=True) == expected
    assert "glsa_x" not in repr(settings) and "pw'" not in repr(settings)


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VILLAGE_GRAFANA__URL", "https://grafana.example/")
    monkeypatch.setenv("VILLAGE_GRAFANA__TOKEN", "glsa_env")
    monkeypatch.setenv("VILLAGE_GRAFANA__LANGUAGE", "en")
    grafana = load_settings().grafana
    assert grafana.url == "https://grafana.example"
    assert grafana.credential(development=False) == "glsa_env"
    assert grafana.language == "en"


@pytest.mark.parametrize(
    "fields",
    [{"url": "ftp://x"}, {"url": "grafana:3000"}, {"language": "fr"}, {"folder_uid": "a/b"},
     {"datasource_database_url": "mysql://x/y"}, {"datasource_database_url": "postgresql://h"},
     {"unknown": 1}],
)
def test_bad_settings_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GrafanaSettings(**fields)


def test_datasource_endpoint_defaults_to_the_service_database() -> None:
    endpoint = GrafanaSettings().datasource_endpoint("postgresql://svc:pw@db:6543/village")
    assert (endpoint.host, endpoint.port, endpoint.database, endpoint.user, endpoint.password) == (
        "db", 6543, "village", "svc", "pw")
    assert "pw" not in repr(endpoint)
    reader = GrafanaSettings(datasource_database_url="postgresql://reader@ro-db/village")
    assert reader.datasource_endpoint("postgresql://svc:pw@db/village") == parse_database_url(
        "postgresql://reader@ro-db/village")
