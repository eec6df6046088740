"""Every panel's SQL over a county the simulators generated (docs/simulators.md): a small
population with two days of history, decoded by ingest's own decoder, with faults acted
out by the simulators' models. The panels must run and see the faults."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dashboards.catalogue import build_all
from dashboards.check import all_places, check_queries
from dashboards.expand import TimeRange
from simulators.faults import FaultWindow
from simulators.history import Backfill
from simulators.population import PopulationSpec, generate_population
from simulators.store import fill_history
from tests.clock import SHIFTED_CLOCKS
from tests.conftest import ADMIN_URL, create_database, drop_database, refresh_rollups
from tests.dashboards.panel_rows import panel_rows

DAYS = 2
DEVICES = generate_population(
    PopulationSpec(townships=2, villages=4, meters=16, probes=2, cameras=4, barns=2, speakers=4),
    seed=7,
)
METERS = [d.device_id for d in DEVICES if d.kind == "water_meter"]
LEAKER, SWAPPED = METERS[0], METERS[1]
CONTAMINATED = next(d.device_id for d in DEVICES if d.kind == "water_quality")
ENGLISH = build_all("en", "village-pg")


@pytest.fixture(scope="module", params=["county 00:15 on new year's day", "UTC 23:45 at the end of February"])
def end(request: pytest.FixtureRequest) -> datetime:
    """Where the simulated history ends: a pinned instant, on the hour before it."""
    return SHIFTED_CLOCKS[request.param].astimezone(UTC).replace(minute=0)


@pytest.fixture(scope="module")
def simulated_url(migrated_template: str, end: datetime) -> Iterator[str]:
    """A migrated database filled by the simulators' back-fill."""
    name = f"village_sim_{uuid.uuid4().hex[:12]}"
    url = create_database(ADMIN_URL, name, template=migrated_template)
    start = end - timedelta(days=DAYS)
    faults = [
        (LEAKER, FaultWindow("leak", start, ramp_s=0)),
        (SWAPPED, FaultWindow("meter_swap", start + timedelta(hours=30))),
        (CONTAMINATED, FaultWindow("contamination", end - timedelta(hours=6), ramp_s=0)),
    ]
    with psycopg.connect(url) as conn:
        fill_history(conn, DEVICES, Backfill(start=start, days=DAYS, seed=7), faults)
        refresh_rollups(conn)
    yield url
    drop_database(ADMIN_URL, name)


def rows(url: str, end: datetime, title: str) -> list[dict[str, Any]]:
    time_range = TimeRange(end - timedelta(days=DAYS), end, timedelta(hours=1))
    return panel_rows(url, ENGLISH, title, all_places(), time_range)


def test_every_panel_runs_over_the_simulated_county(simulated_url: str, end: datetime) -> None:
    with psycopg.connect(simulated_url) as conn:
        results = check_queries(conn, ENGLISH, end - timedelta(days=DAYS), end)
    assert [(r.dashboard, r.panel, r.error) for r in results if r.error] == []
    with_rows = {r.panel for r in results if r.rows}
    for panel in ("Daily consumption per village", "Top consumers (20)", "pH (6.5-8.5)",
                  "Temperature-humidity index (cattle heat stress)", "One map: every device",
                  "Minimum night flow (02:00-04:00)", "Gases now (mg/m³, NY/T 388)"):
        assert panel in with_rows, panel


def test_the_simulated_leak_is_the_leak_suspect(simulated_url: str, end: datetime) -> None:
    suspects = rows(simulated_url, end, "Leak suspects (no zero-use hour in 24 h)")
    assert [s["device_id"] for s in suspects] == [LEAKER]
    alarms = rows(simulated_url, end, "Meters' own alarms")
    assert (LEAKER, "leak") in {(a["device_id"], a["type"]) for a in alarms}


def test_a_simulated_meter_swap_is_never_negative_use(simulated_url: str, end: datetime) -> None:
    days = rows(simulated_url, end, "Daily consumption per village")
    assert days and min(d["consumption_m3"] for d in days) >= 0
    top = rows(simulated_url, end, "Top consumers (20)")
    assert all(t["consumption_m3"] >= 0 for t in top)


def test_simulated_contamination_is_an_exceedance(simulated_url: str, end: datetime) -> None:
    probe = next(d for d in DEVICES if d.device_id == CONTAMINATED)
    station = f"{probe.site or probe.village} / {probe.name or probe.device_id}"
    found = rows(simulated_url, end, "Exceedances (GB 5749-2022)")
    assert found and {f["site"] for f in found} == {station}, found
