"""Evaluation as pure functions with a fixed clock: every condition type, table-driven."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from alerting.evaluate import (
    Presence,
    RuleBook,
    evaluate_events,
    evaluate_night_flow,
    evaluate_stream,
    evaluate_tick,
)
from alerting.model import AlertState, Sample, Subject, Transition
from alerting.signals import thi

from .helpers import T0, at, device, rule, series

TURBIDITY = {"threshold": {"above": 1.0, "clear_below": 0.8, "for": "10m"}}


def fire_times(transitions: list[Transition]) -> list[tuple[str, float]]:
    """(to_state, minutes after T0) of each transition."""
    return [(t.to_state, (t.at - T0).total_seconds() / 60) for t in transitions]


def stream(rule_, points, metric, states=None, subject=None):
    subject = subject or device()
    return evaluate_stream(RuleBook([rule_]), {subject.device_id: subject},
                           {subject.device_id: {metric: series(points)}}, states or {})


@pytest.mark.parametrize(("condition", "points", "expected"), [
    # above with `for`: pending at 0, firing once 10 minutes have passed, never twice
    (TURBIDITY, [(0, 1.5), (5, 1.6), (10, 1.7), (15, 2.0)], [("firing", 10)]),
    # a short excursion stays pending and never fires
    (TURBIDITY, [(0, 1.5), (5, 0.5), (10, 1.5), (15, 0.5)], []),
    # hysteresis: 0.9 is under the threshold but above the clearing level: still firing
    (TURBIDITY, [(0, 1.5), (10, 1.5), (12, 0.9), (14, 1.1), (16, 0.8)],
     [("firing", 10), ("resolved", 16)]),
    # hovering at the threshold does not flap
    (TURBIDITY, [(0, 1.01), (10, 1.01), (11, 0.99), (12, 1.01), (13, 0.99), (14, 1.01)],
     [("firing", 10)]),
    # below, clearing above its own level
    ({"threshold": {"below": 0.05, "clear_above": 0.07}}, [(0, 0.1), (1, 0.04), (2, 0.06), (3, 0.08)],
     [("firing", 1), ("resolved", 3)]),
    # outside a range, back inside the clearing range
    ({"threshold": {"outside": [6.5, 8.5], "clear_inside": [6.6, 8.4]}},
     [(0, 7.0), (1, 9.0), (2, 8.45), (3, 8.3), (4, 6.0)],
     [("firing", 1), ("resolved", 3), ("firing", 4)]),
])
def test_threshold(condition, points, expected):
    outcome = stream(rule(condition, metric="turbidity_ntu"), points, "turbidity_ntu")
    assert fire_times(outcome.transitions) == expected


def test_the_value_and_threshold_that_fired_are_carried():
    outcome = stream(rule(TURBIDITY, metric="turbidity_ntu"), [(0, 1.5), (10, 2.5)], "turbidity_ntu")
    (fired,) = outcome.transitions
    assert (fired.value, fired.threshold, fired.started_at) == (2.5, 1.0, at(0))


def test_a_for_window_continues_from_the_persisted_state():
    rule_ = rule(TURBIDITY, metric="turbidity_ntu")
    first = stream(rule_, [(0, 1.5), (5, 1.6)], "turbidity_ntu")
    assert first.transitions == []
    (state,) = first.states.values()
    assert (state.state, state.active_since) == ("pending", at(0))
    # a new process reads the state back: the window started at 0, not now
    second = stream(rule_, [(0, 1.5), (5, 1.6), (10, 1.7)], "turbidity_ntu", {state.fingerprint: state})
    assert fire_times(second.transitions) == [("firing", 10)]


def test_samples_already_judged_are_not_judged_again():
    rule_ = rule(TURBIDITY, metric="turbidity_ntu")
    first = stream(rule_, [(0, 1.5), (10, 1.6)], "turbidity_ntu")
    states = dict(first.states)
    again = stream(rule_, [(0, 1.5), (10, 1.6)], "turbidity_ntu", states)
    assert again.transitions == []


def test_late_data_is_judged_at_its_own_time():
    # a batch that arrives hours late: the alert starts and fires at the samples' times
    rule_ = rule(TURBIDITY, metric="turbidity_ntu")
    outcome = stream(rule_, [(0, 0.5), (60, 1.5), (70, 1.5), (80, 0.5)], "turbidity_ntu")
    assert fire_times(outcome.transitions) == [("firing", 70), ("resolved", 80)]
    assert outcome.transitions[0].started_at == at(60)


@pytest.mark.parametrize(("condition", "points", "expected"), [
    # rising 2 units in 60 minutes = 2/h above 1/h
    ({"rate": {"window": "1h", "above": 1.0}}, [(0, 0), (30, 0.2), (60, 2.0)], [("firing", 60)]),
    # too little history for half a window: not judged
    ({"rate": {"window": "1h", "above": 1.0}}, [(0, 0), (10, 5)], []),
    # falling fast
    ({"rate": {"window": "1h", "below": -1.0}}, [(0, 5), (60, 2), (120, 2)],
     [("firing", 60), ("resolved", 120)]),
])
def test_rate_of_change(condition, points, expected):
    outcome = stream(rule(condition, metric="ph"), points, "ph")
    assert fire_times(outcome.transitions) == expected


@pytest.mark.parametrize(("points", "expected"), [
    ([(0, 7.0), (60, 7.0), (120, 7.0), (179, 7.0), (180, 7.0)], [("firing", 180)]),
    ([(0, 7.0), (60, 7.0), (120, 7.1), (180, 7.1), (300, 7.1), (310, 7.2)],
     [("firing", 300), ("resolved", 310)]),
])
def test_stuck_sensor(points, expected):
    outcome = stream(rule({"stuck": {"for": "3h"}}, metric="ph"), points, "ph")
    assert fire_times(outcome.transitions) == expected


def meter() -> Subject:
    return device("wm-1", "water_meter")


@pytest.mark.parametrize(("points", "expected"), [
    # 3 m3 in an hour is a burst
    ([(0, 100.0), (30, 101.0), (60, 103.0), (120, 103.1)], [("firing", 60), ("resolved", 120)]),
    # a register going back (a meter swap) is no use at all, not negative use, and no burst
    ([(0, 100.0), (30, 0.5), (60, 0.6)], []),
])
def test_consumption_from_the_register(points, expected):
    rule_ = rule({"consumption": {"window": "1h", "above": 2.0, "clear_below": 1.0}}, kind="water_meter")
    outcome = stream(rule_, points, "total_m3", subject=meter())
    assert fire_times(outcome.transitions) == expected


def test_household_leak_needs_a_whole_day_and_no_quiet_hour():
    leak_rule = rule({"household_leak": {"hours": 24}}, kind="water_meter")
    # 15-minute readings over 25 hours, 5 litres every interval: never a quiet hour
    dripping = [(m, 100 + 0.005 * (m // 15)) for m in range(0, 25 * 60 + 1, 15)]
    outcome = stream(leak_rule, dripping, "total_m3", subject=meter())
    assert fire_times(outcome.transitions) == [("firing", 24 * 60)]
    # the same household with its night hour quiet (02:00-03:00 after T0 + 18 h)
    base = 0.0
    normal = []
    for m, _ in dripping:
        if not (18 * 60 < m <= 19 * 60):
            base += 0.005
        normal.append((m, 100 + base))
    assert stream(leak_rule, normal, "total_m3", subject=meter()).transitions == []


def test_household_leak_arriving_late_in_one_batch_is_judged():
    leak_rule = rule({"household_leak": {"hours": 24}}, kind="water_meter")
    first_day = [(m, 100 + 0.01 * (m // 60)) for m in range(0, 12 * 60, 60)]
    part = stream(leak_rule, first_day, "total_m3", subject=meter())
    assert part.transitions == []
    whole = [(m, 100 + 0.01 * (m // 60)) for m in range(0, 26 * 60, 60)]
    later = stream(leak_rule, whole, "total_m3", dict(part.states), subject=meter())
    assert fire_times(later.transitions) == [("firing", 24 * 60)]


def test_thi_formula_matches_the_domain_bands():
    assert thi(20, 50) == pytest.approx(65.25, abs=0.01)
    assert thi(30, 80) > 79 > thi(25, 60) > 72


def test_thi_pairs_temperature_and_humidity():
    barn = device("barn-1", "barn")
    rule_ = rule({"thi": {"above": 79, "clear_below": 78}}, kind="barn")
    data: dict[str, Sequence[Sample]] = {"temperature_c": series([(0, 25), (10, 31), (20, 31), (30, 24)]),
            "humidity_pct": series([(0, 60), (10, 80), (30, 60)])}
    outcome = evaluate_stream(RuleBook([rule_]), {"barn-1": barn}, {"barn-1": data}, {})
    assert fire_times(outcome.transitions) == [("firing", 10), ("resolved", 30)]
    assert outcome.transitions[0].value == pytest.approx(thi(31, 80), abs=0.01)


def test_stopped_reporting_uses_the_kind_default_and_resolves_when_heard():
    cams = {f"cam-{i}": device(f"cam-{i}", "camera") for i in range(3)}
    book = RuleBook([rule({"stopped": {}}, kind="camera")])
    presence = {"cam-0": Presence(at(0)), "cam-1": Presence(at(4)),
                "cam-2": Presence(at(9), offline_at=at(1))}
    outcome = evaluate_tick(book, cams, presence, {"camera": 300}, {}, at(6))
    fired = sorted(str(t.subject.device_id) for t in outcome.transitions)
    assert fired == ["cam-0", "cam-2"]  # cam-2 said offline (Last Will) at 1
    states = dict(outcome.states)
    back = evaluate_tick(book, cams, {**presence, "cam-0": Presence(at(7))}, {"camera": 300},
                         states, at(8))
    assert [(t.subject.device_id, t.to_state) for t in back.transitions] == [("cam-0", "resolved")]


def test_a_quiet_tick_writes_no_state():
    cams = {"cam-0": device("cam-0", "camera")}
    book = RuleBook([rule({"stopped": {"for": "5m"}}, kind="camera")])
    outcome = evaluate_tick(book, cams, {"cam-0": Presence(at(0))}, {}, {}, at(1))
    assert outcome.states == {} and outcome.transitions == []


def test_device_events_fire_and_expire():
    cam = device("cam-0", "camera")
    book = RuleBook([rule({"event": {"types": ["intrusion"], "resolve_after": "30m"}}, kind="camera")])
    outcome = evaluate_events(book, {"cam-0": cam}, {"cam-0": [(at(0), "motion"), (at(1), "intrusion"),
                                                               (at(5), "intrusion")]}, {})
    assert fire_times(outcome.transitions) == [("firing", 1)]
    states: dict[str, AlertState] = dict(outcome.states)
    assert evaluate_tick(book, {"cam-0": cam}, {}, {}, states, at(20)).transitions == []
    assert evaluate_tick(book, {"cam-0": cam}, {}, {}, states, at(33)).transitions == []  # 28 after the last
    expired = evaluate_tick(book, {"cam-0": cam}, {}, {}, states, at(36))
    assert fire_times(expired.transitions) == [("resolved", 36)]


def test_night_flow_against_the_area_baseline():
    area = Subject(None, None, "T1", "V1")
    book = RuleBook([rule({"night_flow": {"rise_pct": 30, "baseline_nights": 3}}, kind="water_meter")])
    nights = [(T0 + timedelta(days=d), flow) for d, flow in enumerate([1.0, 1.1, 0.9, 1.0, 1.5, 1.0])]
    outcome = evaluate_night_flow(book, {"village": {area: nights}}, {})
    assert [(t.to_state, (t.at - T0).days) for t in outcome.transitions] == [("firing", 4), ("resolved", 5)]
    assert outcome.transitions[0].threshold == pytest.approx(1.3)


def test_rules_pick_devices_by_place_and_tags():
    rule_ = rule(TURBIDITY, metric="turbidity_ntu", village="V2", tags={"position": "plant"})
    inside = device(village="V2", tags=(("position", "plant"),))
    outside = device(village="V1", tags=(("position", "plant"),))
    book = RuleBook([rule_])
    assert book.for_subject(inside, ["threshold"]) == [rule_]
    assert book.for_subject(outside, ["threshold"]) == []


@pytest.mark.parametrize(("silent", "expected"), [(19, []), (20, [("firing", 6)]), (30, [("firing", 6)])])
def test_an_area_outage_needs_enough_silent_devices(silent, expected):
    cams = {f"cam-{i}": device(f"cam-{i}", "camera") for i in range(30)}
    book = RuleBook([rule({"outage": {"min_share": 0.5, "min_devices": 20}}, kind="camera")])
    presence = {d: Presence(at(0) if i < silent else at(5)) for i, d in enumerate(cams)}
    outcome = evaluate_tick(book, cams, presence, {"camera": 300}, {}, at(6))
    assert fire_times(outcome.transitions) == expected
    assert all(t.subject.device_id is None and t.subject.township == "T1" for t in outcome.transitions)


def test_an_outage_clears_below_four_fifths_of_its_share():
    cams = {f"cam-{i}": device(f"cam-{i}", "camera") for i in range(40)}
    book = RuleBook([rule({"outage": {"min_share": 0.5, "min_devices": 10}}, kind="camera")])
    down = {d: Presence(at(0)) for d in cams}
    states = dict(evaluate_tick(book, cams, down, {"camera": 300}, {}, at(6)).states)
    partly = {d: Presence(at(0) if i < 17 else at(6)) for i, d in enumerate(cams)}  # 42% silent
    assert evaluate_tick(book, cams, partly, {"camera": 300}, states, at(7)).transitions == []
    mostly_back = {d: Presence(at(0) if i < 15 else at(7)) for i, d in enumerate(cams)}  # 37%
    assert fire_times(evaluate_tick(book, cams, mostly_back, {"camera": 300}, states,
                                    at(8)).transitions) == [("resolved", 8)]


def test_alerts_of_a_retired_device_resolve_on_the_next_tick():
    cam = device("cam-0", "camera")
    book = RuleBook([rule({"stopped": {}}, kind="camera")])
    firing = evaluate_tick(book, {"cam-0": cam}, {"cam-0": Presence(at(0))}, {"camera": 300}, {}, at(6))
    assert fire_times(firing.transitions) == [("firing", 6)]
    retired = evaluate_tick(book, {}, {}, {"camera": 300}, dict(firing.states), at(7))
    assert fire_times(retired.transitions) == [("resolved", 7)]


def test_baseline_rise_with_hysteresis_and_no_judgement_without_history():
    rule_ = rule({"baseline": {"rise_pct": 30}}, metric="conductivity_us_cm")
    points = [(0, 900), (1, 1100), (2, 1000), (3, 990)]  # level 1040, clears at or below 992
    data: dict[str, dict[str, Sequence[Sample]]] = {
        "wq-1": {"conductivity_us_cm": series(points), "conductivity_us_cm@baseline": series([(3, 800)])}}
    outcome = evaluate_stream(RuleBook([rule_]), {"wq-1": device()}, data, {})
    assert fire_times(outcome.transitions) == [("firing", 1), ("resolved", 3)]
    assert outcome.transitions[0].threshold == pytest.approx(1040)
    no_history: dict[str, dict[str, Sequence[Sample]]] = {"wq-1": {"conductivity_us_cm": series(points)}}
    assert evaluate_stream(RuleBook([rule_]), {"wq-1": device()}, no_history, {}).transitions == []
