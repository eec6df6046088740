"""The maps' base layer: a configured XYZ tile server, or an outline needing no internet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashboards.basemap import OFFLINE_OUTLINES
from dashboards.catalogue import build_all
from dashboards.health import UID as HEALTH
from dashboards.settings import GrafanaSettings
from ground.settings import SettingsError
from village.cli import app
from village.settings import load_settings

TILES = "https://tiles.county.example/osm/{z}/{x}/{y}.png"


def maps(tiles_url: str | None = None) -> list[dict[str, object]]:
    (health,) = [b for b in build_all("zh", "ds", tiles_url, "© 县测绘院") if b.uid == HEALTH]
    return [p for p in health.model["panels"] if p.get("type") == "geomap"]


def test_without_a_tile_server_the_map_needs_no_internet() -> None:
    (panel,) = maps()
    assert panel["options"]["basemap"]["type"] == "geojson"  # type: ignore[index]
    assert panel["options"]["basemap"]["config"]["src"] == OFFLINE_OUTLINES  # type: ignore[index]
    every = json.dumps([b.model for b in build_all("en", "ds")])
    assert '"type": "default"' not in every and "carto" not in every.lower()
    assert "http://" not in every and "https://" not in every


def test_a_self_hosted_tile_server_is_the_base_layer() -> None:
    (panel,) = maps(TILES)
    assert panel["options"]["basemap"] == {  # type: ignore[index]
        "type": "xyz", "name": "Basemap", "config": {"url": TILES, "attribution": "© 县测绘院"}}


@pytest.mark.parametrize(("url", "message"), [
    ("tiles.example/{z}/{x}/{y}.png", "must be an http(s):// URL"),
    ("https://tiles.example/{z}/{x}.png", "must hold {y}"),
])
def test_a_bad_tile_url_is_refused_naming_the_setting(
        url: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VILLAGE_GRAFANA__TILES_URL", url)
    with pytest.raises(SettingsError, match=r"VILLAGE_GRAFANA__TILES_URL: .*" + message[:12]):
        load_settings()
    assert GrafanaSettings(tiles_url="/tiles/{z}/{x}/{y}.png").tiles_url == "/tiles/{z}/{x}/{y}.png"


def test_the_build_command_uses_the_setting(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VILLAGE_GRAFANA__TILES_URL", TILES)
    result = CliRunner().invoke(app, ["dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (written,) = [p for p in tmp_path.rglob("*.json") if HEALTH in p.read_text()]
    assert TILES in written.read_text()
