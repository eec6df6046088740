"""Every panel's SQL, expanded as Grafana expands it, runs against the real schema filled with
the test county (tests/dashboards/county.py), returns the columns its panel expects, and
shows what the county's data says."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from dashboards import limits
from dashboards.board import ALL, PLACE_VARIABLES
from dashboards.catalogue import build_all
from dashboards.check import all_places, check_queries
from dashboards.expand import TimeRange, Variable
from tests.clock import COUNTY
from tests.dashboards import county
from tests.dashboards.panel_rows import panel_rows

ENGLISH = build_all("en", "village-pg")


def places(**chosen: tuple[str, ...]) -> dict[str, Variable]:
    """Place variables: the chosen values for some, All for the rest."""
    return {
        name: Variable(name, selected=chosen[name]) if name in chosen
        else Variable(name, all_selected=True, all_value=ALL)
        for name in PLACE_VARIABLES
    }


SELECTIONS = {
    "all": all_places(),
    "one township": places(township=("东河镇",)),
    "a village with a quote": places(village=("Xi'an",)),
    "two villages": places(village=("李家村", "Xi'an")),
    "one site": places(site=("牛场",)),
    "nothing matches": places(township=("无此镇",)),
}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("selection", list(SELECTIONS))
def test_every_panel_query_runs_and_returns_its_columns(
    county_url: str, county_now: datetime, selection: str, language: str
) -> None:
    built = build_all(language, "village-pg")  # type: ignore[arg-type]
    with psycopg.connect(county_url) as conn:
        results = check_queries(conn, built, county_now - timedelta(days=7), county_now,
                                SELECTIONS[selection])
    assert len(results) == sum(len(b.queries) for b in built) > 45
    failures = [(r.dashboard, r.panel, r.error) for r in results if r.error]
    assert failures == []
    if selection == "all":
        empty = [(r.dashboard, r.panel) for r in results if r.rows == 0]
        assert empty == [], "the county has data for every panel"


def rows(url: str, now: datetime, title: str, variables: dict[str, Variable] | None = None,
         days: float = 7) -> list[dict[str, Any]]:
    """Run the English panel (or variable, `$name`) with this title; rows as dicts."""
    time_range = TimeRange(now - timedelta(days=days), now, timedelta(hours=1))
    return panel_rows(url, ENGLISH, title, variables or all_places(), time_range)


def test_leak_suspect_is_the_household_that_never_stops(county_url: str, county_now: datetime) -> None:
    suspects = rows(county_url, county_now, "Leak suspects (no zero-use hour in 24 h)")
    assert [s["device_id"] for s in suspects] == ["wm-leak"]
    assert float(suspects[0]["min_hourly_m3"]) == pytest.approx(county.LEAK_M3H, abs=1e-4)
    assert rows(county_url, county_now, "Leak suspects") == [{"devices": 1}]


def test_daily_consumption_is_never_negative_across_a_meter_swap(
    county_url: str, county_now: datetime
) -> None:
    days = rows(county_url, county_now, "Daily consumption per village")
    assert days and all(d["consumption_m3"] >= 0 for d in days)
    # Xi'an has wm-swap alone from the county day after wm-silent fell silent: every whole day
    # since then, the day of the swap included, is one household's normal day (less the quarter
    # hour of the swap). Which days those are follows from the pinned instant alone.
    normal_day = 16 * county.DAY_USE_M3H
    xian = {d["day"].astimezone(COUNTY).date(): float(d["consumption_m3"])
            for d in days if d["village"] == "Xi'an" and d["meters"] == 1}
    today = county_now.astimezone(COUNTY).date()
    silent_day = (county_now - county.SILENT_SINCE).astimezone(COUNTY).date()
    swap_day = (county_now - timedelta(days=county.SWAP_DAY)).astimezone(COUNTY).date()
    whole_days = [silent_day + timedelta(days=n) for n in range(1, (today - silent_day).days)]
    assert swap_day in whole_days
    assert set(xian) == {*whole_days, today}
    assert [xian[day] for day in whole_days] == pytest.approx([normal_day] * len(whole_days), abs=0.01)
    per_township = rows(county_url, county_now, "Daily consumption per township")
    assert {r["metric"] for r in per_township} == {"东河镇", "西山乡", "-"}


def test_top_consumer_and_low_battery_are_the_leaking_meter(
    county_url: str, county_now: datetime
) -> None:
    top = rows(county_url, county_now, "Top consumers (20)")
    assert top[0]["device_id"] == "wm-leak"
    batteries = rows(county_url, county_now, "Lowest meter batteries")
    assert batteries[0] == {"device_id": "wm-leak", "name": "李漏户", "village": "李家村",
                            "battery_v": 3.0}
    assert rows(county_url, county_now, "Low batteries") == [{"devices": 1}]


def test_meters_not_reporting(county_url: str, county_now: datetime) -> None:
    silent = rows(county_url, county_now, "Meters not reporting, longest silent first")
    assert [s["device_id"] for s in silent] == ["wm-silent"]
    assert float(silent[0]["silent_h"]) >= county.SILENT_SINCE.total_seconds() / 3600 - 1


def test_night_flow_shows_the_leak_in_its_village(county_url: str, county_now: datetime) -> None:
    night = rows(county_url, county_now, "Minimum night flow (02:00-04:00)")
    by_village: dict[str, list[float]] = {}
    for row in night:
        by_village.setdefault(row["metric"], []).append(row["night_flow_m3h"])
    assert min(by_village["李家村"]) == pytest.approx(county.LEAK_M3H, abs=1e-6)
    assert max(by_village["王庄村"]) == pytest.approx(0, abs=1e-9)


def test_quality_exceedances_name_the_turbid_station(county_url: str, county_now: datetime) -> None:
    found = rows(county_url, county_now, "Exceedances (GB 5749-2022)")
    assert [(f["site"], f["metric"]) for f in found] == [("西山泵站 / wq-turbid", "turbidity_ntu")]
    # Every sixth ten-minute reading of the last two days was turbid.
    assert found[0]["readings_outside"] == pytest.approx(2 * 144 / 6, abs=1)
    assert found[0]["worst"] == county.TURBID_NTU
    assert rows(county_url, county_now, "Stations out of limits") == [{"devices": 1}]


def test_barn_heat_stress_and_gases_follow_the_domain_formulas(
    county_url: str, county_now: datetime
) -> None:
    thi = rows(county_url, county_now, "Temperature-humidity index (cattle heat stress)", days=1)
    cattle = {r["thi"] for r in thi if "barn-cattle" in r["metric"]}
    assert cattle and all(v == pytest.approx(limits.thi(32.0, 70.0)) for v in cattle)
    gases = rows(county_url, county_now, "Gases now (mg/m³, NY/T 388)")
    nh3 = {(g["site"], g["species"]): g for g in gases if g["metric"] == "nh3_ppm"}
    cattle_nh3 = nh3[("牛场 / barn-cattle", "cattle")]
    expected = limits.ppm_to_mg_m3("nh3_ppm", 30.0) / limits.GAS_LIMITS_MG_M3["nh3_ppm"]["cattle"]
    assert float(cattle_nh3["pct_of_limit"]) == pytest.approx(100 * expected, abs=0.1)
    assert float(nh3[("猪场 / barn-pigs", "pigs")]["pct_of_limit"]) < 100


def test_the_map_and_place_filters(county_url: str, county_now: datetime) -> None:
    everything = rows(county_url, county_now, "One map: every device")
    assert len(everything) == len(county.DEVICES)
    assert {r["device_id"] for r in everything if r["online"] == 0} == {"wm-silent"}
    xian = rows(county_url, county_now, "One map: every device", places(village=("Xi'an",)))
    assert {r["device_id"] for r in xian} == {
        d.device_id for d in county.DEVICES if d.village == "Xi'an"}
    town = rows(county_url, county_now, "One map: every device", places(township=("东河镇",)))
    assert {r["village"] for r in town} == {"李家村", "王庄村"}
    # All keeps the device that has no township at all.
    assert "wm-nowhere" in {r["device_id"] for r in everything}


def test_place_variables_cascade(county_url: str, county_now: datetime) -> None:
    assert rows(county_url, county_now, "$township") == [{"township": "东河镇"}, {"township": "西山乡"}]
    villages = rows(county_url, county_now, "$village", places(township=("西山乡",)))
    assert villages == [{"village": "Xi'an"}]
    sites = rows(county_url, county_now, "$site", places(township=("东河镇",)))
    assert {s["site"] for s in sites} == {"东河水厂", "牛场"}


def test_alerts_acknowledgement_and_broadcast_delivery(county_url: str, county_now: datetime) -> None:
    assert rows(county_url, county_now, "Firing now (by severity)") == [
        {"critical": 1, "major": 1, "minor": 0, "info": 0}]
    ack = {r["severity"]: r for r in rows(county_url, county_now, "Time to acknowledge")}
    assert float(ack["critical"]["median_ack_min"]) == county.ACK_MINUTES
    assert ack["major"]["acknowledged"] == 0 and ack["major"]["median_ack_min"] is None
    (broadcast,) = rows(county_url, county_now, "Broadcasts and their delivery")
    assert (broadcast["speakers"], broadcast["confirmed"], broadcast["not_confirmed"]) == (2, 1, 1)
    (missing,) = rows(county_url, county_now, "Speakers that did not confirm")
    assert (missing["device_id"], missing["state"]) == ("cam-1", "no_answer")
    # A township's operators see the broadcast sent to one of its villages, others do not.
    assert rows(county_url, county_now, "Broadcasts and their delivery",
                places(township=("西山乡",))) == []


def test_time_series_panels_return_time_then_series_name() -> None:
    series = [q for b in ENGLISH for q in b.queries if q.query.format == "time_series"]
    assert len(series) >= 15
    for panel in series:
        assert panel.query.columns[:2] == ("time", "metric")


