"""Grafana's provisioning files and the datasource model. Pure, except `write_build`.

`village dashboards build --out DIR` writes:
    DIR/provisioning/datasources/village.yaml   the PostgreSQL datasource
    DIR/provisioning/dashboards/village.yaml    a file provider for the dashboards below
    DIR/dashboards/<uid>.json                   one file per dashboard
Mount DIR/provisioning as Grafana's provisioning directory and DIR/dashboards where the
provider looks (`dashboards_path`). Secrets are never written: the datasource password is
`${GRAFANA_DATASOURCE_PASSWORD}`, which Grafana reads from its environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dashboards.board import BuiltDashboard
from dashboards.query import DATASOURCE_TYPE
from dashboards.settings import DatabaseEndpoint, GrafanaSettings

PASSWORD_VARIABLE = "GRAFANA_DATASOURCE_PASSWORD"


def datasource_model(
    settings: GrafanaSettings, endpoint: DatabaseEndpoint, password: str | None
) -> dict[str, Any]:
    """The datasource as Grafana's API and provisioning describe it."""
    model: dict[str, Any] = {
        "name": settings.datasource_name,
        "type": DATASOURCE_TYPE,
        "uid": settings.datasource_uid,
        "access": "proxy",
        "url": f"{endpoint.host}:{endpoint.port}",
        "user": endpoint.user,
        "isDefault": True,
        "jsonData": {
            "database": endpoint.database,
            "sslmode": settings.datasource_sslmode,
            "postgresVersion": 1500,
            "timescaledb": settings.timescaledb,
            "maxOpenConns": 10,
            "maxIdleConns": 10,
            "connMaxLifetime": 14400,
        },
    }
    if password is not None:
        model["secureJsonData"] = {"password": password}
    return model


def datasource_provisioning(settings: GrafanaSettings, endpoint: DatabaseEndpoint) -> dict[str, Any]:
    """`provisioning/datasources/village.yaml`; the password comes from Grafana's environment."""
    password = f"${{{PASSWORD_VARIABLE}}}" if endpoint.password is not None else None
    source = datasource_model(settings, endpoint, password)
    source["editable"] = False
    return {"apiVersion": 1, "datasources": [source]}


def provider_provisioning(settings: GrafanaSettings, dashboards_path: str) -> dict[str, Any]:
    """`provisioning/dashboards/village.yaml`: load our dashboards into our folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "smart-village",
                "type": "file",
                "folder": settings.folder_title,
                "folderUid": settings.folder_uid,
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
            }
        ],
    }


def write_build(
    out: Path,
    dashboards: list[BuiltDashboard],
    settings: GrafanaSettings,
    endpoint: DatabaseEndpoint,
    dashboards_path: str,
) -> list[Path]:
    """Write the dashboards and provisioning files under `out`; return what was written."""
    files: dict[Path, str] = {
        out / "provisioning" / "datasources" / "village.yaml": yaml.safe_dump(
            datasource_provisioning(settings, endpoint), allow_unicode=True, sort_keys=False
        ),
        out / "provisioning" / "dashboards" / "village.yaml": yaml.safe_dump(
            provider_provisioning(settings, dashboards_path), allow_unicode=True, sort_keys=False
        ),
    }
    for built in dashboards:
        files[out / "dashboards" / f"{built.uid}.json"] = (
            json.dumps(built.model, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
