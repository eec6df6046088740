"""Every dashboard builds in both languages and validates against Grafana 11.6's schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dashboards import limits
from dashboards.board import ALL, PLACE_VARIABLES, BuiltDashboard
from dashboards.catalogue import DASHBOARDS, build_all
from dashboards.i18n import COLUMN_LABELS, LANGUAGES, Language

# Grafana publishes its JSON schemas in no package a registry serves; they are looked for
# beside the project (as CI has them), and the checks that need them are skipped elsewhere.
SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "grafana-jsonschema" / "v11.6"
UIDS = ["village-water", "village-quality", "village-barns", "village-health", "village-alerts"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def schema(name: str, definition: str | None = None) -> jsonschema.Draft7Validator:
    """A validator for a Grafana schema file, or for one of its definitions."""
    path = SCHEMAS / f"{name}.jsonschema.json"
    if not path.is_file():
        pytest.skip(f"Grafana 11.6's JSON schemas are not beside the project (no {path.name} in "
                    "../shared/grafana-jsonschema/v11.6)")
    document = json.loads(path.read_text(encoding="utf-8"))
    if definition is not None:
        document = {**document, "$ref": f"#/definitions/{definition}"}
    jsonschema.Draft7Validator.check_schema(document)
    return jsonschema.Draft7Validator(document)


def problems(validator: jsonschema.Draft7Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(instance)]


@pytest.fixture(scope="module", params=LANGUAGES)
def built(request: pytest.FixtureRequest) -> list[BuiltDashboard]:
    return build_all(request.param, "village-pg")


def test_every_dashboard_has_its_stable_uid(built: list[BuiltDashboard]) -> None:
    assert [b.uid for b in built] == UIDS == list(DASHBOARDS)
    assert [b.model["uid"] for b in built] == UIDS


def test_dashboards_validate_against_grafana_11_6_schema(built: list[BuiltDashboard]) -> None:
    dashboard = schema("dashboard")
    for board in built:
        assert problems(dashboard, board.model) == [], board.uid


def test_time_series_panels_validate_against_the_timeseries_schema(
    built: list[BuiltDashboard],
) -> None:
    options, field_config = schema("timeseries", "Options"), schema("timeseries", "FieldConfig")
    seen = 0
    for board in built:
        for panel in board.model["panels"]:
            if panel["type"] != "timeseries":
                continue
            seen += 1
            assert problems(options, panel["options"]) == [], panel["title"]
            custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
            assert problems(field_config, custom) == [], panel["title"]
    assert seen >= 15


def test_every_panel_queries_our_datasource_with_its_sql(built: list[BuiltDashboard]) -> None:
    for board in built:
        sqls = [q.query.sql for q in board.queries]
        for panel in board.model["panels"]:
            (target,) = panel["targets"]
            assert target["datasource"] == {"type": "grafana-postgresql-datasource",
                                            "uid": "village-pg"}
            assert target["rawQuery"] is True and target["refId"] == "A"
            assert target["format"] in ("table", "time_series")
            assert target["rawSql"] in sqls
            assert "{" not in target["rawSql"].replace("${", ""), "a Python placeholder leaked"
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_place_variables_are_multi_value_with_all(built: list[BuiltDashboard]) -> None:
    for board in built:
        variables = board.model["templating"]["list"]
        assert [v["name"] for v in variables] == list(PLACE_VARIABLES)
        for variable in variables:
            assert variable["type"] == "query" and variable["multi"] and variable["includeAll"]
            assert variable["allValue"] == ALL
            assert "FROM devices" in variable["query"]


def test_titles_are_chinese_by_default_and_english_by_option() -> None:
    zh, en = build_all("zh", "ds"), build_all("en", "ds")
    for chinese, english in zip(zh, en, strict=True):
        assert chinese.uid == english.uid
        assert CJK.search(chinese.title) and not CJK.search(english.title)
        zh_titles = [p["title"] for p in chinese.model["panels"]]
        en_titles = [p["title"] for p in english.model["panels"]]
        assert all(CJK.search(t) for t in zh_titles), zh_titles
        assert not any(CJK.search(t) for t in en_titles), en_titles
        assert len(set(zh_titles)) == len(zh_titles)


def test_every_table_column_has_a_name_in_both_languages() -> None:
    used = set()
    for board in build_all("en", "ds"):
        for query in board.queries:
            if query.query.format == "table" and not query.panel.startswith("$"):
                used |= set(query.query.columns)
    kept = {"latitude", "longitude", "online"}  # the map reads these by SQL name
    assert used - set(COLUMN_LABELS) - kept == set(), "columns shown with their SQL name"
    assert set(COLUMN_LABELS) - used == set(), "labels no panel uses"


def panel(language: Language, uid: str, title: str) -> dict[str, Any]:
    (board,) = [b for b in build_all(language, "ds") if b.uid == uid]
    (found,) = [p for p in board.model["panels"] if p["title"] == title]
    return found


def step_values(found: dict[str, Any]) -> list[float]:
    return [s["value"] for s in found["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]


def test_gb5749_limits_are_drawn_as_thresholds() -> None:
    ph = panel("en", "village-quality", "pH (6.5-8.5)")
    assert step_values(ph) == [limits.PH_LOW, limits.PH_HIGH]
    assert ph["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed+area"
    turbidity = panel("en", "village-quality", "Turbidity (≤1 NTU)")
    assert step_values(turbidity) == [limits.TURBIDITY_MAX_NTU, limits.TURBIDITY_CRITICAL_NTU]
    chlorine = panel("en", "village-quality", "Free chlorine (≥0.05 mg/L)")
    assert step_values(chlorine)[0] == limits.CHLORINE_MIN_MG_L


def test_barn_heat_stress_bands_are_drawn() -> None:
    thi = panel("en", "village-barns", "Temperature-humidity index (cattle heat stress)")
    assert step_values(thi) == [limits.THI_MILD, limits.THI_MODERATE, limits.THI_SEVERE]
    body = panel("en", "village-barns", "Animal body temperature (hottest)")
    assert step_values(body) == [limits.BODY_TEMP_WATCH_C, limits.BODY_TEMP_VET_C]


def test_the_one_map_colours_devices_by_status() -> None:
    geomap = panel("zh", "village-health", "一张图：全部设备")
    assert geomap["type"] == "geomap"
    (layer,) = geomap["options"]["layers"]
    assert layer["location"] == {"mode": "coords", "latitude": "latitude", "longitude": "longitude"}
    assert layer["config"]["style"]["color"]["field"] == "online"
    assert geomap["fieldConfig"]["defaults"]["color"]["mode"] == "thresholds"


def test_building_is_deterministic() -> None:
    first = json.dumps([b.model for b in build_all("zh", "ds")], sort_keys=True)
    assert json.dumps([b.model for b in build_all("zh", "ds")], sort_keys=True) == first
