"""Running a simulation: real time or back-fill over MQTT (the adapter's composition root)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console

from ground.mqtt import check_reachable
from ground.settings import MqttEndpoint
from simulators.device import SimDevice
from simulators.faults import FaultWindow
from simulators.fleet import FleetCounters, SimulatedFleet
from simulators.history import Backfill, history
from simulators.hostile import HostileGenerator
from simulators.progress import Progress

PROGRESS_EVERY_S = 1.0
PUBLISH_CHUNK = 500


@dataclass
class RunOptions:
    """Where to publish and how."""

    endpoint: MqttEndpoint
    prefix: str
    seed: int = 0
    faults: Sequence[tuple[str, FaultWindow]] = ()
    hostile_rate: float = 0.0
    nb_iot_share: float = 0.3
    show_progress: bool = True
    max_in_flight: int = 10_000  # back-fill: messages published but not yet PUBACKed, at most
    passwords: dict[str, str] = field(default_factory=dict)  # device id -> its broker secret


def _connect_timeout_s(devices: Sequence[SimDevice]) -> float:
    """Time for every device to connect: a minute, or a second per 50 devices if longer."""
    return max(60.0, len(devices) / 50)


def run_realtime(devices: Sequence[SimDevice], options: RunOptions, console: Console,
                 duration_s: float | None, stop: threading.Event) -> FleetCounters:
    """Run the devices at their normal rates until `duration_s` passes or `stop` is set."""
    check_reachable(options.endpoint)
    hostile = (HostileGenerator(options.prefix, [(d.device_id, d.kind) for d in devices],
                                options.seed) if options.hostile_rate > 0 else None)
    fleet = SimulatedFleet(options.endpoint, options.prefix, devices, seed=options.seed,
                           nb_iot_share=options.nb_iot_share, hostile=hostile,
                           hostile_rate=options.hostile_rate, passwords=options.passwords)
    fleet.add_faults(options.faults)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    with Progress(console, "simulate", options.show_progress) as progress:
        try:
            fleet.start(timeout_s=_connect_timeout_s(devices))
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                stop.wait(PROGRESS_EVERY_S if deadline is None
                          else min(PROGRESS_EVERY_S, max(deadline - time.monotonic(), 0)))
                progress.update(fleet.counters, len(fleet.online()), fleet.connections)
        finally:
            fleet.stop()
    return fleet.counters


@dataclass(frozen=True)
class BackfillReport:
    """What a back-fill delivered."""

    messages: int
    acknowledged: int
    seconds: float


def run_backfill(devices: Sequence[SimDevice], plan: Backfill, options: RunOptions,
                 console: Console, stop: threading.Event) -> BackfillReport:
    """Publish the history of `plan` as store-and-forward batches, every message PUBACKed."""
    check_reachable(options.endpoint)
    fleet = SimulatedFleet(options.endpoint, options.prefix, devices, seed=options.seed,
                           nb_iot_share=plan.nb_iot_share, autonomous=False,
                           passwords=options.passwords)
    started = time.monotonic()
    with Progress(console, "back-fill", options.show_progress) as progress:
        try:
            fleet.start(timeout_s=_connect_timeout_s(devices))
            batches = math.ceil((plan.end - plan.start) / plan.batch)
            for number, batch in enumerate(history(devices, plan, options.faults), 1):
                for first in range(0, len(batch), PUBLISH_CHUNK):
                    if stop.is_set():
                        raise KeyboardInterrupt
                    fleet.wait_until(lambda: fleet.outstanding < options.max_in_flight, 600,
                                     "the broker to acknowledge")
                    fleet.publish(batch[first:first + PUBLISH_CHUNK])
                progress.update(fleet.counters, len(fleet.online()), fleet.connections,
                                f"batch {number}/{batches}")
            fleet.flush(timeout_s=600)
            progress.update(fleet.counters, len(fleet.online()), fleet.connections,
                            "all acknowledged")
        finally:
            fleet.stop()
    # Each connection's retained `online` status is not history.
    return BackfillReport(fleet.counters.published - fleet.counters.connects,
                          fleet.counters.acknowledged - fleet.counters.connects,
                          time.monotonic() - started)
