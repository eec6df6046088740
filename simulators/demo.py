"""The county `village up` simulates: a small population, and the faults it acts out in its
first minutes so that the console has real alerts and a real outage to show (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from simulators.device import SimDevice
from simulators.faults import FaultWindow
from simulators.population import PopulationSpec
from simulators.scenario import parse_scenario, resolve

# The meters are NB-IoT ones that connect themselves, so they take commands (close the valve
# from the console) and send their own events; the gateways carry the probes and barns.
POPULATION = PopulationSpec(townships=1, villages=2, meters=8, probes=2, cameras=3, barns=2,
                            speakers=3, gateways=True,
                            gateway_kinds=frozenset(("water_quality", "barn")))
SEED = 1
# Offsets from the start. A probe's contamination fires the critical turbidity alert within
# about three minutes (then the chlorine one); a camera's tamper is a device event, an alert
# at once; so is a meter's burst (whose alert links to closing its valve); a camera off the
# network goes offline by its Last Will and comes back.
SCENARIO = """
faults:
  - {fault: contamination, kind: water_quality, count: 1, at: 1m, duration: 30m, ramp: 0s}
  - {fault: tamper, devices: [cam-0003], at: 2m, duration: 1m}
  - {fault: burst, devices: [wm-0002], at: 3m, duration: 10m}
  - {fault: offline, devices: [cam-0002], at: 4m, duration: 10m}
"""


def demo_faults(devices: Sequence[SimDevice], start: datetime) -> list[tuple[str, FaultWindow]]:
    """The scenario's fault windows on these devices, from `start`."""
    return resolve(parse_scenario(SCENARIO), devices, start, seed=SEED)
