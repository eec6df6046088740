"""Alerting benchmark: rule evaluations per second over 150,000 devices (pure core only).

    .venv/bin/python bench/alerting_evaluations.py [--devices 150000]

Builds a county of devices of every kind, one reading set per device (every metric of its
kind), and runs the preset rules over it: the streaming evaluation (each rule on each new
sample, with state) and the time pass (stopped reporting over every device). Prints
evaluations per second, peak memory and the machine load. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import load  # noqa: E402

from alerting.evaluate import (  # noqa: E402
    STREAM_TYPES,
    Presence,
    RuleBook,
    evaluate_stream,
    evaluate_tick,
)
from alerting.files import load_rules  # noqa: E402
from alerting.model import Sample, Subject  # noqa: E402
from devices.catalogue import KIND_BY_NAME  # noqa: E402

# The county's mix (domain notes: meters dominate, then cameras).
MIX = {"water_meter": 0.80, "camera": 0.15, "water_quality": 0.02, "barn": 0.02, "speaker": 0.01}
NOW = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def county(count: int) -> dict[str, Subject]:
    """Devices of every kind over 3 townships, 60 villages."""
    subjects = {}
    kinds = list(MIX)
    weights = list(MIX.values())
    rng = random.Random(1)
    for i in range(count):
        kind = rng.choices(kinds, weights)[0]
        device_id = f"{kind[:2]}-{i:06d}"
        subjects[device_id] = Subject(device_id, kind, f"T{i % 3}", f"V{i % 60}")
    return subjects


def readings(subjects: dict[str, Subject], at: datetime,
             rng: random.Random) -> dict[str, dict[str, Sequence[Sample]]]:
    """One reading set per device: every metric of its kind at one instant."""
    batch: dict[str, dict[str, Sequence[Sample]]] = {}
    for device_id, subject in subjects.items():
        kind = KIND_BY_NAME[subject.kind or ""]
        batch[device_id] = {
            m.name: [Sample(at, rng.uniform(m.minimum, m.minimum + (m.maximum - m.minimum) * 0.1))]
            for m in kind.metrics
        }
    return batch


def main() -> None:
    """Run the passes and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=150_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(2)
    book = RuleBook(load_rules([]))
    subjects = county(args.devices)
    print(f"{args.devices} devices, {len(book.rules)} preset rules; {load()}")
    states: dict = {}
    for round_ in range(args.rounds):
        batch = readings(subjects, NOW + timedelta(minutes=round_), rng)
        samples = sum(len(s) for metrics in batch.values() for s in metrics.values())
        # every rule that picks a device and reads a metric of the batch is judged once
        judged = sum(1 for device_id, subject in subjects.items()
                     for rule in book.for_subject(subject, STREAM_TYPES)
                     if any(batch[device_id].get(m) for m in book.reads[rule.name][0]))
        started = time.perf_counter()
        outcome = evaluate_stream(book, subjects, batch, states)
        elapsed = time.perf_counter() - started
        states.update(outcome.states)
        print(f"streaming round {round_ + 1}: {samples} samples, {judged} rule evaluations in "
              f"{elapsed:.2f} s = {judged / elapsed:,.0f} evaluations/s "
              f"({args.devices / elapsed:,.0f} devices/s); {len(outcome.transitions)} transitions; {load()}")
    presence = {d: Presence(NOW - timedelta(seconds=rng.uniform(0, 3 * 86400))) for d in subjects}
    stale = {k.name: float(k.stale_after_s) for k in KIND_BY_NAME.values()}
    for round_ in range(args.rounds):
        started = time.perf_counter()
        outcome = evaluate_tick(book, subjects, presence, stale, states, NOW + timedelta(hours=round_))
        elapsed = time.perf_counter() - started
        states.update(outcome.states)
        print(f"time pass round {round_ + 1}: {args.devices} devices' stopped-reporting and outage evaluations in "
              f"{elapsed:.2f} s = {args.devices / elapsed:,.0f} evaluations/s; "
              f"{len(outcome.transitions)} transitions; {load()}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {peak_mb:.0f} MB; {load()}")


if __name__ == "__main__":
    main()
