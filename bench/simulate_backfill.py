"""Benchmark: a back-fill of history over MQTT, every message acknowledged by the broker.

Starts a private Mosquitto and back-fills a generated county (default: 1,000 devices with
the county's mix, multiplexed through village gateways) for one day, as
`village simulate --backfill 1` does. Prints the history generation rate alone (pure
models, no broker), then the back-fill: messages/s and reading sets/s published and
acknowledged, this process's CPU share, peak RSS and the load average.

    .venv/bin/python bench/simulate_backfill.py [--devices 1000] [--days 1]

Not part of the test suite. The machine is shared: read the figures with the load.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import orjson
from rich.console import Console

from devices.topics import Channel
from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from simulators.history import Backfill, history
from simulators.population import PopulationSpec, generate_population
from simulators.run import RunOptions, run_backfill

START = datetime.fromisoformat("2026-11-16T00:00:00+08:00")


def _entries(payload: bytes, channel: Channel) -> int:
    body = orjson.loads(payload)
    if channel is Channel.GATEWAY_TELEMETRY:
        return sum(len(v) if isinstance(v, list) else 1 for v in body.values())
    return len(body) if isinstance(body, list) else 1


def main() -> None:
    """Generate, then back-fill over MQTT, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=float, default=1.0)
    args = parser.parse_args()
    mix = PopulationSpec()  # the county's defaults, scaled down
    scale = args.devices / (mix.meters + mix.probes + mix.cameras + mix.barns + mix.speakers)
    spec = PopulationSpec(townships=1, villages=4, meters=round(mix.meters * scale),
                          probes=max(1, round(mix.probes * scale)),
                          cameras=round(mix.cameras * scale),
                          barns=max(1, round(mix.barns * scale)),
                          speakers=round(mix.speakers * scale), gateways=True)
    devices = generate_population(spec, seed=1)
    plan = Backfill(START, args.days, seed=1)
    print(f"{len(devices)} devices, {args.days} days; load average before "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    started, cpu0 = time.monotonic(), time.process_time()
    messages = readings = 0
    for batch in history(devices, plan):
        messages += len(batch)
        readings += sum(_entries(m.payload, m.channel) for m in batch
                        if m.channel is not Channel.EVENT)
    wall = time.monotonic() - started
    print(f"generation only: {messages} messages, {readings} reading sets in {wall:.1f} s = "
          f"{readings / wall:.0f} reading sets/s, CPU {(time.process_time() - cpu0) / wall:.0%}")

    with tempfile.TemporaryDirectory(prefix="sim-backfill-") as tmp:
        broker = MosquittoServer(data_dir=Path(tmp) / "mosquitto").start()
        try:
            options = RunOptions(parse_mqtt_url(broker.url), "bf", seed=1, show_progress=False)
            cpu0 = time.process_time()
            report = run_backfill(devices, plan, options, Console(stderr=True),
                                  threading.Event())
            cpu = (time.process_time() - cpu0) / report.seconds
        finally:
            broker.stop()
    print(f"back-fill over MQTT: {report.messages} messages ({report.acknowledged} acknowledged),"
          f" {readings} reading sets in {report.seconds:.1f} s (connect included) = "
          f"{report.messages / report.seconds:.0f} msg/s, {readings / report.seconds:.0f} "
          f"reading sets/s; CPU {cpu:.0%} of one core")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
