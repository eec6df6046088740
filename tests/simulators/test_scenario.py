"""Scenario files: strict validation that names the field, deterministic resolution."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from simulators.device import SimDevice, numbered
from simulators.scenario import ScenarioError, parse_scenario, resolve

T0 = datetime.fromisoformat("2026-11-22T08:00:00+08:00")
POPULATION: list[SimDevice] = (
    numbered("water_meter", 50, "wm", village="东村", township="东乡")
    + numbered("water_meter", 50, "wn", village="西村", township="西乡")
    + numbered("camera", 10, "cam", village="东村", township="东乡")
)


def test_a_scenario_resolves_to_windows_on_the_chosen_devices() -> None:
    scenario = parse_scenario("""
faults:
  - fault: leak
    township: 东乡
    kind: water_meter
    count: 5
    at: 2h
    duration: 6h
  - fault: offline
    kind: camera
    share: 0.5
    at: 2026-11-22T09:00:00+08:00
    ramp: 30s
  - fault: burst
    devices: [wn-0007]
""")
    pairs = resolve(scenario, POPULATION, T0, seed=1)
    leaks = [(d, w) for d, w in pairs if w.name == "leak"]
    assert len(leaks) == 5 and all(d.startswith("wm-") for d, _ in leaks)
    assert {(w.start, w.end) for _, w in leaks} == {(T0 + timedelta(hours=2),
                                                      T0 + timedelta(hours=8))}
    offline = [w for d, w in pairs if w.name == "offline"]
    assert len(offline) == 5 and offline[0].start == T0 + timedelta(hours=1)
    assert offline[0].end is None and offline[0].ramp_s == 30
    assert [d for d, w in pairs if w.name == "burst"] == ["wn-0007"]
    assert resolve(scenario, POPULATION, T0, seed=1) == pairs
    assert resolve(scenario, POPULATION, T0, seed=2) != pairs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("faults: [{fault: leak, colour: red}]", "faults[0].colour: Extra inputs"),
        ("faults: [{fault: leak, at: soon}]", "faults[0].at: Value error, must be an offset"),
        ("faults: [{fault: leak, at: 2026-11-22T08:00:00}]", "faults[0].at: Value error, a time needs its UTC offset"),
        ("faults: [{fault: leak, duration: -5}]", "faults[0].duration:"),
        ("faults: [{fault: leak, count: 0}]", "faults[0].count:"),
        ("faults: [{fault: leak, share: 2}]", "faults[0].share:"),
        ("faults: [{fault: leak, count: 1, share: 0.1}]", "faults[0]: give count or share"),
        ("faults: [{kind: camera}]", "faults[0].fault: Field required"),
        ("faults: [{fault: leak, kind: toaster}]", "faults[0].kind: unknown kind 'toaster'"),
        ("start: tomorrow", "start:"),
        ("faults: {fault: leak}", "faults: Input should be a valid list"),
        ("{faults: [", "not YAML"),
    ],
)
def test_a_bad_scenario_names_the_field(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("faults: [{fault: contamination, kind: water_meter}]",
         "faults[0].fault: a water_meter has no fault 'contamination'"),
        ("faults: [{fault: leak, village: 北村}]", "faults[0]: no device matches"),
        ("faults: [{fault: leak, devices: [wm-9999]}]", "faults[0].devices: not in the population"),
        ("faults: [{fault: tamper, kind: camera, count: 11}]", "faults[0].count: 11 asked, 10"),
    ],
)
def test_a_scenario_that_does_not_fit_the_population_says_where(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        resolve(parse_scenario(text), POPULATION, T0)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_scenario_file_reports_every_problem_at_once() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("faults: [{fault: leak, colour: red}, {fault: leak, at: soon},"
                       " {kind: camera}]")
    assert str(caught.value).startswith("3 problems: faults[0].colour: Extra inputs")
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "faults[0].colour", "faults[1].at", "faults[2].fault"]
    assert "\n" not in str(caught.value)
    with pytest.raises(ScenarioError) as caught:
        resolve(parse_scenario("faults: [{fault: contamination, kind: water_meter},"
                               " {fault: leak, kind: water_meter}, {fault: leak, village: 北村},"
                               " {fault: leak, devices: [wm-9999]}]"), POPULATION, T0)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "faults[0].fault", "faults[2]", "faults[3].devices"]
