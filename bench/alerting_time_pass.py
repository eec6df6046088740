"""Alerting benchmark: the columnar time pass (stopped reporting, area outages) over a
million devices.

    .venv/bin/python bench/alerting_time_pass.py [--devices 1000000] [--rounds 3]

Builds the fleet as columns (kind and place codes, presence in microseconds; no Python
object per device) and times
`evaluate_tick_columns` with the preset rules at a few instants a second apart: one device
in fifty is silent beyond its kind's limit, one in ten has a persisted state. Prints each
pass's time, the transitions it made, the process's peak memory and the machine load.
Not part of the test suite (tests/alerting/test_columnar.py proves it equals evaluate_tick).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import load  # noqa: E402

from alerting.columnar import NEVER, Column, Fleet, PresenceColumns, evaluate_tick_columns, micros  # noqa: E402
from alerting.evaluate import RuleBook  # noqa: E402
from alerting.files import load_rules  # noqa: E402
from alerting.model import AlertState, fingerprint  # noqa: E402
from devices.catalogue import KIND_BY_NAME  # noqa: E402

# Ten counties' mix (meters dominate, then cameras), 30 townships of 20 villages.
MIX = {"water_meter": 0.80, "camera": 0.16, "water_quality": 0.01, "barn": 0.01,
       "speaker": 0.02}
NOW = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def build(count: int, rng: np.random.Generator) -> tuple[Fleet, PresenceColumns]:
    """A fleet of `count` devices as columns, last heard from now to three days ago."""
    kinds = tuple(MIX)
    kind = rng.choice(len(kinds), size=count, p=list(MIX.values())).astype(np.int32)
    ids = [f"{kinds[k][:2]}-{i:07d}" for i, k in enumerate(kind.tolist())]
    rows = np.arange(count)
    townships = tuple(f"T{t}" for t in range(30))
    villages = tuple(f"V{v}" for v in range(600))
    nothing = Column(np.zeros(count, dtype=np.int32), (None,))
    fleet = Fleet(ids, {
        "kind": Column(kind, kinds),
        "township": Column((rows % 30).astype(np.int32), townships),
        "village": Column((rows % 600).astype(np.int32), villages),
        "grid": nothing, "site": nothing, "gateway": nothing,
    }, np.zeros(count, dtype=np.int32), ((),))
    # Most heard within their kind's silence limit; one in fifty silent for up to 3 days.
    stale = np.array([KIND_BY_NAME[k].stale_after_s for k in kinds], dtype=np.float64)[kind]
    ago = np.where(rng.random(count) < 0.02, rng.uniform(stale, 3 * 86_400),
                   rng.uniform(0, 0.9 * stale))
    last_seen = micros(NOW) - (ago * 1_000_000).astype(np.int64)
    last_seen[rng.random(count) < 0.001] = NEVER
    offline = np.full(count, NEVER, dtype=np.int64)
    return fleet, PresenceColumns(last_seen, offline)


def main() -> None:
    """Build the fleet, run the passes, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"before: {load()}", flush=True)
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    fleet, presence = build(args.devices, rng)
    book = RuleBook(load_rules([]))
    stopped = {rule.select.kind: rule for rule in book.of_type("stopped")}
    states = {}
    # One device in ten has a state row (it went silent once); one in fifty is firing.
    for row in range(0, args.devices, 10):
        subject = fleet.subject(row)
        rule = stopped.get(subject.kind)
        if rule is not None:
            key = fingerprint(rule.name, subject)
            firing = row % 50 == 0
            states[key] = AlertState(key, rule.name, subject.device_id,
                                     "firing" if firing else "inactive",
                                     NOW - timedelta(hours=2) if firing else None,
                                     NOW - timedelta(minutes=1), 1.0 if firing else None,
                                     row if firing else None)
    stale = {k.name: float(k.stale_after_s) for k in KIND_BY_NAME.values()}
    print(f"{args.devices:,} devices as columns, {len(states):,} persisted states,"
          f" {len(book.rules)} preset rules, built in {time.perf_counter() - started:.1f} s;"
          f" {load()}", flush=True)
    for round_ in range(args.rounds):
        now = NOW + timedelta(seconds=round_)
        started, cpu = time.perf_counter(), time.process_time()
        outcome = evaluate_tick_columns(book, fleet, presence, stale, states, now)
        elapsed = time.perf_counter() - started
        states.update(outcome.states)
        print(f"time pass {round_ + 1}: {args.devices:,} devices in {elapsed:.2f} s"
              f" ({time.process_time() - cpu:.2f} s CPU),"
              f" {len(outcome.transitions):,} transitions, {len(outcome.states):,} states"
              f" changed; {load()}", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {peak_mb:.0f} MB; {load()}")


if __name__ == "__main__":
    main()
