"""The county `village up` simulates raises alerts by itself within minutes: its models are
played for six minutes (as the running fleet would, at its five-second interval), decoded as
ingest would, and judged by the preset rules, with and without the scenario's faults."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from alerting.evaluate import RuleBook, evaluate_events, evaluate_stream
from alerting.files import load_rules
from alerting.model import Sample, Subject
from devices.decode import Limits
from simulators import demo
from simulators.build import DEFAULT_INTERVALS_S, ModelOptions, build_models
from simulators.history import readings_of
from simulators.population import generate_population
from tests.clock import SHIFTED_CLOCKS

START = SHIFTED_CLOCKS["county noon at the end of June"]
STEP = timedelta(seconds=5)


def fired_within(minutes: int, with_faults: bool) -> set[str]:
    """The preset rules that fire on the demo county's first minutes."""
    devices = generate_population(demo.POPULATION, seed=demo.SEED)
    built = build_models(devices, ModelOptions(
        START, seed=demo.SEED, nb_iot_share=0, intervals_s=dict.fromkeys(DEFAULT_INTERVALS_S, 5.0)))
    if with_faults:
        for device_id, window in demo.demo_faults(devices, START):
            built.by_id[device_id].faults.add(window)
    kinds = {d.device_id: d.kind for d in devices}
    series: dict[str, dict[str, Sequence[Sample]]] = defaultdict(lambda: defaultdict(list))
    events: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    now = START
    while now < START + timedelta(minutes=minutes):
        now += STEP
        messages = [m for model in built.connected if not model.faults.quiet(now)
                    for m in model.poll(now)]
        readings, records = readings_of(messages, kinds, now, Limits())
        for r in readings:
            series[r.device_id][r.metric] = [*series[r.device_id][r.metric], Sample(r.ts, r.value)]
        for e in records:
            events[e.device_id].append((e.ts, e.type))
    subjects = {d.device_id: Subject(d.device_id, d.kind, d.township, d.village, d.grid, d.site,
                                     d.gateway_id) for d in devices}
    book = RuleBook(load_rules([]))
    transitions = (evaluate_stream(book, subjects, series, {}).transitions
                   + evaluate_events(book, subjects, events, {}).transitions)
    return {t.rule for t in transitions if t.to_state == "firing"}


def test_the_demo_faults_raise_alerts_within_five_minutes() -> None:
    assert {"wq-turbidity-critical", "cam-tamper", "wm-leak-flag"} <= fired_within(5, True)


def test_without_them_the_county_is_quiet() -> None:
    assert fired_within(5, False) == set()
