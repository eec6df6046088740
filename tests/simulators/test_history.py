"""Populations and back-filled history: deterministic, decodable, gateways carrying children."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta

import orjson

from devices.decode import Limits
from devices.registry_csv import parse_registry_csv
from devices.topics import Channel
from simulators.faults import FaultWindow
from simulators.history import Backfill, history, readings_of
from simulators.population import PopulationSpec, generate_population, summary, write_csv
from simulators.scenario import parse_scenario, resolve

T0 = datetime.fromisoformat("2026-11-16T00:00:00+08:00")
SMALL = PopulationSpec(townships=2, villages=4, meters=40, probes=2, cameras=6, barns=2,
                       speakers=4)


def test_a_generated_population_has_the_counts_and_is_the_same_for_the_same_seed() -> None:
    devices = generate_population(PopulationSpec(), seed=1)
    assert summary(devices) == {"water_meter": 15_000, "water_quality": 20, "camera": 3_000,
                                "barn": 30, "speaker": 400}
    assert len({d.device_id for d in devices}) == len(devices)
    assert len({d.village for d in devices}) == 40 and len({d.township for d in devices}) == 3
    assert generate_population(PopulationSpec(), seed=1) == devices
    assert generate_population(PopulationSpec(), seed=2) != devices


def test_the_csv_is_accepted_by_the_registry_import() -> None:
    devices = generate_population(PopulationSpec(**{**SMALL.__dict__, "gateways": True}), seed=3)
    out = io.StringIO()
    assert write_csv(devices, out) == len(devices)
    parsed = parse_registry_csv(out.getvalue().encode())
    assert parsed.problems == []
    assert [r.device_id for r in parsed.rows] == [d.device_id for d in devices]
    assert {r.gateway_id for r in parsed.rows if r.kind == "water_meter"} <= {
        d.device_id for d in devices if d.kind == "gateway"}


def run(spec: PopulationSpec, seed: int, days: float = 1.0) -> list[list[bytes]]:
    devices = generate_population(spec, seed)
    return [[m.payload for m in batch]
            for batch in history(devices, Backfill(T0, days, seed=seed))]


def test_backfill_is_identical_for_the_same_seed() -> None:
    first = hashlib.sha256(b"".join(b"".join(batch) for batch in run(SMALL, 5))).hexdigest()
    again = hashlib.sha256(b"".join(b"".join(batch) for batch in run(SMALL, 5))).hexdigest()
    other = hashlib.sha256(b"".join(b"".join(batch) for batch in run(SMALL, 6))).hexdigest()
    assert first == again != other


def test_backfill_decodes_with_no_rejection_gateways_included() -> None:
    spec = PopulationSpec(**{**SMALL.__dict__, "gateways": True})
    devices = generate_population(spec, seed=4)
    kinds = {d.device_id: d.kind for d in devices}
    plan = Backfill(T0, 2, seed=4, nb_iot_share=0.5)
    batches = list(history(devices, plan))
    assert len(batches) == 8  # two days in six-hour batches
    messages = [m for batch in batches for m in batch]
    channels = {m.channel for m in messages}
    assert Channel.GATEWAY_TELEMETRY in channels and Channel.EVENT in channels
    carried = {d.device_id for d in devices if d.gateway_id}
    direct = {m.device_id for m in messages if m.channel is Channel.TELEMETRY}
    assert not carried & direct
    readings, events = readings_of(messages, kinds, plan.end, Limits())
    heard = {r.device_id for r in readings}
    assert heard == set(kinds)
    assert events
    gateway_bodies = [orjson.loads(m.payload) for m in messages
                      if m.channel is Channel.GATEWAY_TELEMETRY]
    assert all(set(body) <= carried for body in gateway_bodies)


def test_a_leak_in_the_backfill_leaves_no_zero_consumption_hour() -> None:
    devices = generate_population(SMALL, seed=8)
    meter = next(d for d in devices if d.kind == "water_meter")
    plan = Backfill(T0, 2, seed=8, nb_iot_share=0)
    leak = (meter.device_id, FaultWindow("leak", T0 + timedelta(hours=12)))
    messages = [m for batch in history(devices, plan, [leak]) for m in batch
                if m.device_id == meter.device_id]
    readings, events = readings_of(messages, {meter.device_id: meter.kind}, plan.end, Limits())
    totals = sorted((r.ts, r.value) for r in readings if r.metric == "total_m3")
    by_hour: dict[datetime, float] = {}
    for ts, value in totals:
        by_hour[ts.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)] = value
    hours = sorted(by_hour)
    use = {h: by_hour[h] - by_hour[p] for p, h in zip(hours, hours[1:], strict=False)}
    leaking = [v for h, v in use.items() if h >= T0 + timedelta(hours=14)]
    assert len(leaking) >= 24 and min(leaking) > 0
    assert min(v for h, v in use.items() if h <= T0 + timedelta(hours=12)) == 0
    assert [e.type for e in events] == ["leak"]


def test_a_leak_scenario_file_gives_a_day_without_a_zero_consumption_hour() -> None:
    devices = generate_population(SMALL, seed=9)
    scenario = parse_scenario("faults:\n  - fault: leak\n    kind: water_meter\n"
                              "    count: 3\n    at: 1h\n")
    faults = resolve(scenario, devices, T0, seed=9)
    leaking = {device_id for device_id, _ in faults}
    plan = Backfill(T0, 1.25, seed=9, nb_iot_share=0)
    messages = [m for batch in history(devices, plan, faults) for m in batch
                if m.device_id in leaking]
    readings, _ = readings_of(messages, {d: "water_meter" for d in leaking}, plan.end, Limits())
    for device_id in leaking:
        totals = sorted((r.ts, r.value) for r in readings
                        if r.device_id == device_id and r.metric == "total_m3")
        hourly = {ts.replace(minute=0, second=0, microsecond=0): v for ts, v in totals}
        hours = sorted(h for h in hourly if h >= T0 + timedelta(hours=2))[:25]
        use = [hourly[b] - hourly[a] for a, b in zip(hours, hours[1:], strict=False)]
        assert len(use) == 24 and min(use) > 0, device_id
