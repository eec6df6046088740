"""The columnar time pass decides exactly what `evaluate_tick` decides, over the same fleets."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest

from alerting.columnar import (
    NEVER,
    Fleet,
    PresenceColumns,
    evaluate_tick_columns,
    from_micros,
    micros,
)
from alerting.evaluate import Outcome, Presence, RuleBook, evaluate_tick
from alerting.files import load_rules
from alerting.model import AlertState, Subject, fingerprint
from alerting.rules import build_rule
from tests.alerting.helpers import T0, rule

KINDS = ("water_meter", "camera", "water_quality", "barn", "speaker", "gateway")
STALE = {"water_meter": 90_000.0, "camera": 300.0, "water_quality": 900.0, "barn": 600.0}
RULES = [
    *load_rules([]),
    # Selectors and holds the presets do not use: place, tags, devices, an explicit silence.
    rule({"stopped": {"for": "2h"}}, kind="water_quality", name="wq-plant-quiet",
         tags={"position": "plant"}),
    rule({"stopped": {"for": "30m"}}, kind="camera", name="cam-v1-quiet", village="V1",
         grid="g2"),
    rule({"stopped": {}}, kind="barn", name="barn-listed", devices=("ba-00003", "ba-00011")),
    build_rule({"name": "village-outage", "severity": "major", "summary_zh": "测试",
                "summary_en": "test", "select": {},
                "condition": {"outage": {"area": "village", "min_share": 0.3, "min_devices": 2}}},
               0),
]


def fleet(rng: random.Random, size: int) -> list[Subject]:
    """Devices of every kind in a few places, some with tags or a gateway."""
    subjects = []
    for i in range(size):
        kind = rng.choice(KINDS)
        tags = rng.choice(((), (("position", "plant"),), (("position", "tap"), ("use", "x"))))
        subjects.append(Subject(f"{kind[:2]}-{i:05d}", kind, f"T{i % 3}", f"V{i % 7}",
                                rng.choice((None, "g1", "g2")), rng.choice((None, "s1")),
                                rng.choice((None, "gw-1")), tags))
    return subjects


def presence(rng: random.Random, subjects: list[Subject]) -> dict[str, Presence]:
    """Last heard anywhere from just now to two days ago (or never); some Last Wills."""
    found = {}
    for s in subjects:
        if rng.random() < 0.05:
            continue  # never heard: no presence row at all
        # Whole seconds often, so silences fall exactly on the limits too.
        fraction = rng.choice((0, rng.randrange(0, 1_000_000)))
        last = T0 - timedelta(seconds=rng.choice((0, 1, 299, 300, 301, 3600, 90_000, 172_800)),
                              microseconds=fraction)
        offline = T0 - timedelta(seconds=rng.uniform(0, 7200)) if rng.random() < 0.1 else None
        found[s.device_id or ""] = Presence(None if rng.random() < 0.03 else last, offline)
    return found


def prior_states(rng: random.Random, subjects: list[Subject], book: RuleBook
                 ) -> dict[str, AlertState]:
    """Persisted states of every lifecycle stage, some judged after `now` already."""
    states = {}
    for s in subjects:
        for r in book.for_subject(s, ("stopped",)):
            if rng.random() < 0.5:
                continue
            stage = rng.choice(("inactive", "pending", "firing"))
            since = T0 - timedelta(minutes=rng.choice((1, 90, 600))) if stage != "inactive" else None
            last = T0 + timedelta(seconds=rng.choice((-600, -1, 0, 5)))
            key = fingerprint(r.name, s)
            states[key] = AlertState(key, r.name, s.device_id, stage, since, last,  # type: ignore[arg-type]
                                     1.0 if since else None,
                                     rng.randrange(1, 999) if stage == "firing" else None)
    # An open alert of a device no longer registered, and a firing event alert.
    states["gone"] = AlertState("gone", "cam-stopped", "ca-99999", "firing", T0, T0, 1.0, 7)
    return states


def columns(subjects: list[Subject], seen: dict[str, Presence]) -> PresenceColumns:
    ids = [s.device_id or "" for s in subjects]
    return PresenceColumns(
        np.array([micros(seen[i].last_seen) if i in seen else NEVER
                                   for i in ids], dtype="int64"),
        np.array([micros(seen[i].offline_at) if i in seen else NEVER
                                   for i in ids], dtype="int64"))


def same(a: Outcome, b: Outcome) -> None:
    assert a.states == b.states
    key = lambda t: (t.fingerprint, t.to_state)  # noqa: E731
    assert sorted(a.transitions, key=key) == sorted(b.transitions, key=key)


@pytest.mark.parametrize("seed", range(6))
def test_columnar_tick_equals_evaluate_tick_pass_after_pass(seed: int) -> None:
    rng = random.Random(seed)
    book = RuleBook(RULES)
    subjects = fleet(rng, 400)
    seen = presence(rng, subjects)
    states = prior_states(rng, subjects, book)
    by_id = {s.device_id or "": s for s in subjects}
    table = Fleet.of(subjects)
    moved = 0
    for step in range(4):
        now = T0 + timedelta(minutes=step * 37)
        expected = evaluate_tick(book, by_id, seen, STALE, states, now)
        got = evaluate_tick_columns(book, table, columns(subjects, seen), STALE, states, now)
        same(got, expected)
        moved += len(expected.transitions)
        states = {**states, **expected.states}
        # Some devices are heard again between passes.
        for s in rng.sample(subjects, 40):
            seen[s.device_id or ""] = Presence(now)
    assert moved > 20  # the fleets really make alerts fire and resolve


def test_micros_round_trip_exactly() -> None:
    ts = T0 + timedelta(microseconds=123_457)
    assert from_micros(micros(ts)) == ts
    assert micros(None) == NEVER
