"""Benchmark: how many simulated devices one process keeps going in real time.

Starts a private Mosquitto and runs, one after the other:

- `county`: a generated county of N devices (default 20,000) at their normal rates
  (meters every 15 min, 30% of them NB-IoT once a day; probes, barns, cameras, speakers
  every minute), multiplexed as `village simulate` does above 5,000 devices: meters,
  probes and barns ride on one gateway per village, cameras and speakers keep a
  connection each;
- `connections`: 5,000 devices with one MQTT connection each, normal rates;
- `stress`: the county with cameras, speakers and gateways reporting every second
  (3,440 connections, about 3,440 messages/s asked for), to find the message rate one
  process sustains.

For each: time to connect everyone, messages/s published and acknowledged, how late the
loop ran models after they were due (p50, p99, max), this process's CPU (share of one
core, and per 1,000 devices), the broker's CPU, peak RSS, and the load average.

    .venv/bin/python bench/simulate_realtime.py [--devices 20000] [--seconds 60]

Not part of the test suite. The machine is shared (2 cores, other engineers): read the
figures with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from simulators.device import SimDevice
from simulators.fleet import SimulatedFleet
from simulators.population import PopulationSpec, generate_population, summary

STRESSED = ("camera", "speaker", "gateway")  # the kinds with a connection of their own


def _cpu_ticks(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def county(devices: int, gateways: bool) -> list[SimDevice]:
    """A county of about `devices` devices with the planning documents' mix."""
    spec = PopulationSpec(gateways=gateways)
    others = spec.probes + spec.cameras + spec.barns + spec.speakers
    return generate_population(replace(spec, meters=max(devices - others, 0)), seed=1)


def run(name: str, broker: MosquittoServer, population: list[SimDevice], seconds: float,
        intervals_s: dict[str, float] | None = None) -> None:
    """Run one case and print its figures."""
    fleet = SimulatedFleet(parse_mqtt_url(broker.url), f"bench{int(time.time())}", population,
                           seed=1, intervals_s=intervals_s or {})
    assert broker.process is not None
    started = time.monotonic()
    fleet.start(timeout_s=600)
    connect_s = time.monotonic() - started
    cpu0, broker0, wall0 = time.process_time(), _cpu_ticks(broker.process.pid), time.monotonic()
    published0, acked0 = fleet.counters.published, fleet.counters.acknowledged
    fleet.counters.lag_s.clear()
    time.sleep(seconds)
    wall = time.monotonic() - wall0
    cpu = (time.process_time() - cpu0) / wall
    broker_cpu = (_cpu_ticks(broker.process.pid) - broker0) / wall
    published = (fleet.counters.published - published0) / wall
    acked = (fleet.counters.acknowledged - acked0) / wall
    lag = np.array(fleet.counters.lag_s or [0.0])
    load = os.getloadavg()
    connections = fleet.connections
    fleet.stop()
    kinds = ", ".join(f"{n} {k}" for k, n in summary(population).items())
    print(f"\n== {name}: {len(population)} devices ({kinds}), {connections} MQTT connections")
    print(f"connect + subscribe everyone: {connect_s:.1f} s")
    print(f"published {published:.1f} msg/s, acknowledged {acked:.1f} msg/s over {wall:.0f} s")
    print(f"model lag after due: p50 {np.percentile(lag, 50) * 1000:.1f} ms, "
          f"p99 {np.percentile(lag, 99) * 1000:.1f} ms, max {lag.max() * 1000:.1f} ms")
    print(f"simulator CPU {cpu * 100:.1f}% of one core, "
          f"{cpu * 100 / (len(population) / 1000):.2f}% per 1,000 devices; "
          f"broker CPU {broker_cpu * 100:.1f}%")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def main() -> None:
    """Run the cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        broker = MosquittoServer(data_dir=Path(tmp) / "mosquitto").start()
        try:
            run("county", broker, county(args.devices, gateways=True), args.seconds)
            run("connections", broker, county(5000, gateways=False)[:5000], args.seconds)
            run("stress", broker, county(args.devices, gateways=True), args.seconds,
                dict.fromkeys(STRESSED, 1.0))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
