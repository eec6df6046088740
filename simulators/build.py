"""Build the pure model of each simulated device, by kind (a dispatch table)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from simulators.commands import NORMAL, Behaviour
from simulators.device import SimDevice
from simulators.model import DeviceModel
from simulators.speaker import PlayTiming, SpeakerModel

# Normal report intervals, seconds.
DEFAULT_INTERVALS_S: dict[str, float] = {
    "speaker": 60.0,
}


@dataclass(frozen=True)
class ModelOptions:
    """What every model is built with: the seed, the start, and per-device overrides."""

    start: datetime
    seed: int = 0
    behaviours: Mapping[str, Behaviour] = field(default_factory=dict)
    intervals_s: Mapping[str, float] = field(default_factory=dict)
    timing: PlayTiming = field(default_factory=PlayTiming)
    stagger: bool = True

    def interval_s(self, kind: str) -> float:
        """The report interval of a kind (overridden or normal)."""
        return self.intervals_s.get(kind, DEFAULT_INTERVALS_S[kind])

    def behaviour(self, device_id: str) -> Behaviour:
        """The behaviour of a device (normal unless named)."""
        return self.behaviours.get(device_id, NORMAL)


def device_rng(seed: int, device_id: str) -> random.Random:
    """A generator of this device's own, the same for the same seed on any machine."""
    return random.Random(f"{seed}/{device_id}")


def _speaker(device: SimDevice, options: ModelOptions) -> DeviceModel:
    return SpeakerModel(device.device_id, device_rng(options.seed, device.device_id),
                        options.start, options.behaviour(device.device_id), options.timing,
                        options.interval_s("speaker"), options.stagger)


BUILDERS: dict[str, Callable[[SimDevice, ModelOptions], DeviceModel]] = {
    "speaker": _speaker,
}


def build_model(device: SimDevice, options: ModelOptions) -> DeviceModel:
    """The model of one device; a kind without a simulator is an error naming it."""
    builder = BUILDERS.get(device.kind)
    if builder is None:
        raise ValueError(f"{device.device_id}: no simulator for kind {device.kind!r}"
                         f" (simulated: {', '.join(sorted(BUILDERS))})")
    return builder(device, options)
