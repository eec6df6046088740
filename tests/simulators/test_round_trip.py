"""Every kind and fault, simulated then decoded with ingest's decoder: the contract agrees."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson
import pytest

from devices.catalogue import kind_named
from devices.decode import Limits, Rejection, decode_events, decode_telemetry, parse_json
from devices.models import PlayCommand, SetValveCommand
from devices.topics import Channel
from simulators.build import ModelOptions, build_model
from simulators.device import SimDevice
from simulators.faults import FaultWindow, faults_of
from simulators.model import DeviceModel
from simulators.payloads import Outgoing

T0 = datetime.fromisoformat("2026-11-16T00:00:00+08:00")  # a Monday
LIMITS = Limits(accepted_lateness=timedelta(days=3650))
FAULT_START = T0 + timedelta(hours=6)
FAULT_END = T0 + timedelta(hours=18)


def run(kind: str, fault: str | None, hours: float = 24, seed: int = 7,
        nb_iot_share: float = 0.0) -> tuple[DeviceModel, list[Outgoing]]:
    device = SimDevice(f"{kind[:2]}-0001", kind)
    model = build_model(device, ModelOptions(start=T0, seed=seed, stagger=False,
                                             nb_iot_share=nb_iot_share))
    if fault is not None:
        model.faults.add(FaultWindow(fault, FAULT_START, FAULT_END))
    out: list[Outgoing] = []
    end = T0 + timedelta(hours=hours)
    now = T0
    while now <= end:
        out.extend(model.poll(now))
        now = max(model.next_due(), now + timedelta(microseconds=1))
    return model, out


def decoded(kind: str, messages: list[Outgoing]) -> dict[str, list[tuple[datetime, float]]]:
    """Decode every message as ingest would; fail on any rejection. Series by metric."""
    series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    received_at = T0 + timedelta(days=10)
    for message in messages:
        document = parse_json(message.payload, LIMITS)
        assert not isinstance(document, Rejection), document
        if message.channel is Channel.TELEMETRY:
            result = decode_telemetry(message.device_id, document, kind_named(kind), received_at,
                                      LIMITS)
            assert result.unknown_metrics == 0
            for reading in result.readings:
                series[reading.metric].append((reading.ts, reading.value))
        else:
            assert message.channel is Channel.EVENT
            result = decode_events(message.device_id, document, received_at, LIMITS)
            assert {e.type for e in result.events} <= set(kind_named(kind).all_event_types)
            for event in result.events:
                series["event:" + event.type].append((event.ts, 1.0))
        assert result.rejections == []
    return series


def during(points: list[tuple[datetime, float]], start: datetime = FAULT_START,
           end: datetime = FAULT_END) -> list[float]:
    return [v for ts, v in points if start <= ts < end]


def outside(points: list[tuple[datetime, float]]) -> list[float]:
    return [v for ts, v in points if ts < FAULT_START]


CASES = [(kind, fault) for kind in ("water_meter", "water_quality", "barn", "camera", "speaker")
         for fault in (None, *faults_of(kind)) if fault != "offline"]


@pytest.mark.parametrize(("kind", "fault"), CASES)
def test_every_kind_and_fault_decodes_with_no_rejection(kind: str, fault: str | None) -> None:
    _, messages = run(kind, fault)
    series = decoded(kind, messages)
    assert series, "nothing was published"
    metric = next(iter(kind_named(kind).metrics)).name
    if fault == "silence":
        assert during(series[metric]) == []
        assert outside(series[metric])
    else:
        assert during(series[metric])


def test_nb_iot_meters_upload_a_day_of_readings_at_once() -> None:
    _, messages = run("water_meter", None, hours=72, nb_iot_share=1.0)
    telemetry = [orjson.loads(m.payload) for m in messages if m.channel is Channel.TELEMETRY]
    assert len(telemetry) in (2, 3)
    assert all(isinstance(t, list) for t in telemetry)
    assert max(len(t) for t in telemetry) == 96
    decoded("water_meter", messages)


def hourly_use(points: list[tuple[datetime, float]]) -> dict[datetime, float]:
    """Consumption per hour from the cumulative register."""
    last_by_hour: dict[datetime, float] = {}
    for ts, total in points:
        last_by_hour[ts.replace(minute=0, second=0, microsecond=0)] = total
    hours = sorted(last_by_hour)
    return {h: last_by_hour[h] - last_by_hour[p] for p, h in zip(hours, hours[1:], strict=False)}


def test_a_normal_household_has_quiet_hours_and_a_leak_has_none_in_24_hours() -> None:
    for seed in range(5):
        _, normal = run("water_meter", None, seed=seed)
        assert min(hourly_use(decoded("water_meter", normal)["total_m3"]).values()) == 0
    _, leaking = run("water_meter", "leak", hours=48)
    series = decoded("water_meter", leaking)
    use = hourly_use(series["total_m3"])
    window = [v for h, v in use.items() if FAULT_START <= h and h + timedelta(hours=1) <= FAULT_END]
    assert len(window) >= 11 and min(window) > 0
    assert len(series["event:leak"]) == 1


def test_a_day_long_leak_has_no_zero_consumption_hour() -> None:
    device = SimDevice("wm-leak", "water_meter")
    model = build_model(device, ModelOptions(start=T0, seed=3, stagger=False, nb_iot_share=0))
    model.faults.add(FaultWindow("leak", T0))
    messages: list[Outgoing] = []
    for minutes in range(0, 25 * 60 + 1, 15):
        messages.extend(model.poll(T0 + timedelta(minutes=minutes)))
    use = hourly_use(decoded("water_meter", messages)["total_m3"])
    assert len(use) >= 24 and all(v > 0 for v in use.values())


@pytest.mark.parametrize(
    ("kind", "fault", "metric", "check"),
    [
        ("water_meter", "burst", "flow_m3h", lambda v: min(v) >= 2.0),
        ("water_meter", "reverse_flow", "flow_m3h", lambda v: max(v) < 0),
        ("water_meter", "flat_battery", "battery_v", lambda v: max(v) < 3.0),
        ("water_quality", "contamination", "turbidity_ntu", lambda v: max(v) > 3),
        ("water_quality", "contamination", "chlorine_mg_l", lambda v: min(v) < 0.05),
        ("water_quality", "calibration_drift", "ph", lambda v: max(v) > 8.5),
        ("water_quality", "fouling", "ph", lambda v: len(set(v)) == 1 and len(v) > 100),
        ("water_quality", "fouling", "turbidity_ntu", lambda v: len(set(v)) == 1),
        ("barn", "ventilation_failure", "nh3_ppm", lambda v: max(v) > 28),
        ("barn", "ventilation_failure", "co2_ppm", lambda v: max(v) > 2000),
        ("barn", "ventilation_failure", "h2s_ppm", lambda v: max(v) > 5.7),
        ("barn", "fever", "body_temp_c", lambda v: min(v) > 40.0),
        ("barn", "heat_wave", "temperature_c", lambda v: max(v) > 32),
        ("camera", "storage_full", "storage_used_pct", lambda v: min(v) >= 99),
        ("camera", "tamper", "bitrate_kbps", lambda v: max(v) < 100),
    ],
)
def test_fault_values_cross_the_limits(kind: str, fault: str, metric: str,
                                       check: Callable[[list[float]], bool]) -> None:
    series = decoded(kind, run(kind, fault)[1])
    assert check(during(series[metric], FAULT_START + timedelta(hours=3)))


@pytest.mark.parametrize(
    ("kind", "metric", "low", "high"),
    [
        ("water_quality", "ph", 6.5, 8.5),
        ("water_quality", "turbidity_ntu", 0, 1),
        ("water_quality", "chlorine_mg_l", 0.3, 2),
        ("barn", "nh3_ppm", 0, 28),
        ("barn", "co2_ppm", 0, 830),
        ("barn", "h2s_ppm", 0, 5.7),
        ("barn", "body_temp_c", 38, 39.5),
        ("water_meter", "battery_v", 3.3, 3.7),
    ],
)
def test_normal_values_are_normal(kind: str, metric: str, low: float, high: float) -> None:
    for seed in range(5):
        values = [v for _, v in decoded(kind, run(kind, None, seed=seed)[1])[metric]]
        assert low <= min(values) and max(values) <= high, (seed, min(values), max(values))


def test_flags_are_raised_once_per_fault() -> None:
    expected = [("water_meter", "burst", "burst"), ("water_meter", "reverse_flow", "reverse_flow"),
                ("water_meter", "flat_battery", "low_battery"), ("camera", "tamper", "tamper")]
    for kind, fault, event in expected:
        assert len(decoded(kind, run(kind, fault)[1])["event:" + event]) == 1


def test_a_meter_swap_resets_the_register_once() -> None:
    totals = [v for _, v in decoded("water_meter", run("water_meter", "meter_swap")[1])["total_m3"]]
    drops = [b - a for a, b in zip(totals, totals[1:], strict=False) if b < a]
    assert len(drops) == 1 and totals[-1] < 10


def test_cameras_see_more_by_day_than_by_night() -> None:
    series = decoded("camera", run("camera", None, hours=72)[1])
    stamps = [ts for name, points in series.items() if name.startswith("event:")
              for ts, _ in points]
    day = sum(1 for ts in stamps if 8 <= ts.hour < 18)
    night = sum(1 for ts in stamps if ts.hour < 4)
    assert day > 5 * night


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    for kind in ("water_meter", "water_quality", "barn", "camera", "speaker"):
        first = [m.payload for m in run(kind, None, hours=6, seed=11)[1]]
        again = [m.payload for m in run(kind, None, hours=6, seed=11)[1]]
        other = [m.payload for m in run(kind, None, hours=6, seed=12)[1]]
        assert first == again and first != other


def test_a_meter_closes_its_valve_on_command_and_acks_once() -> None:
    device = SimDevice("wm-valve", "water_meter")
    model = build_model(device, ModelOptions(start=T0, seed=1, stagger=False, nb_iot_share=0))
    command = SetValveCommand(id="v1", open=False).to_payload()
    acks = [m for m in model.handle_command(command, T0) if m.channel is Channel.COMMAND_ACK]
    again = model.handle_command(command, T0)
    assert [orjson.loads(a.payload)["result"] for a in acks] == ["done"] and again == []
    refused = model.handle_command(PlayCommand(id="p1", text="x").to_payload(), T0)
    assert orjson.loads(refused[0].payload)["reason"] == "unknown op 'play' for a water_meter"
    readings = [orjson.loads(m.payload) for m in model.poll(T0 + timedelta(hours=12))
                if m.channel is Channel.TELEMETRY][0]
    assert {r["valve_open"] for r in readings} == {False}
    assert len({r["total_m3"] for r in readings}) == 1
