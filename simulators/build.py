"""Build the pure model of each simulated device, by kind (a dispatch table)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from simulators.commands import NORMAL, Behaviour
from simulators.device import SimDevice
from simulators.gateway import GatewayModel
from simulators.kinds.barn import BarnPhysics
from simulators.kinds.camera import CameraPhysics
from simulators.kinds.water_meter import WaterMeterPhysics
from simulators.kinds.water_quality import WaterQualityPhysics
from simulators.model import DeviceModel
from simulators.sensor import Physics, SensorDevice
from simulators.speaker import PlayTiming, SpeakerModel

# Normal report intervals, seconds. Meters read every 15 minutes.
DEFAULT_INTERVALS_S: dict[str, float] = {
    "water_meter": 900.0,
    "water_quality": 60.0,
    "camera": 60.0,
    "barn": 60.0,
    "speaker": 60.0,
    "gateway": 60.0,
}
NB_IOT_UPLOAD_EVERY_S = 86_400.0  # an NB-IoT meter wakes once a day with its 96 readings


@dataclass(frozen=True)
class ModelOptions:
    """What every model is built with: the seed, the start, and per-device overrides."""

    start: datetime
    seed: int = 0
    behaviours: Mapping[str, Behaviour] = field(default_factory=dict)
    intervals_s: Mapping[str, float] = field(default_factory=dict)
    timing: PlayTiming = field(default_factory=PlayTiming)
    stagger: bool = True
    nb_iot_share: float = 0.3  # the share of meters that upload once a day

    def interval_s(self, kind: str) -> float:
        """The report interval of a kind (overridden or normal)."""
        return self.intervals_s.get(kind, DEFAULT_INTERVALS_S[kind])

    def behaviour(self, device_id: str) -> Behaviour:
        """The behaviour of a device (normal unless named)."""
        return self.behaviours.get(device_id, NORMAL)


def device_rng(seed: int, device_id: str) -> random.Random:
    """A generator of this device's own, the same for the same seed on any machine."""
    return random.Random(f"{seed}/{device_id}")


def _sensor(device: SimDevice, options: ModelOptions, rng: random.Random, physics: Physics,
            upload_every_s: float | None = None) -> SensorDevice:
    return SensorDevice(device.device_id, physics, rng, options.start,
                        options.interval_s(device.kind), upload_every_s,
                        options.behaviour(device.device_id), options.stagger)


def _water_meter(device: SimDevice, options: ModelOptions) -> DeviceModel:
    rng = device_rng(options.seed, device.device_id)
    nb_iot = rng.random() < options.nb_iot_share
    return _sensor(device, options, rng, WaterMeterPhysics(rng, options.start),
                   NB_IOT_UPLOAD_EVERY_S if nb_iot else None)


def _water_quality(device: SimDevice, options: ModelOptions) -> DeviceModel:
    rng = device_rng(options.seed, device.device_id)
    return _sensor(device, options, rng, WaterQualityPhysics(rng))


def _barn(device: SimDevice, options: ModelOptions) -> DeviceModel:
    rng = device_rng(options.seed, device.device_id)
    return _sensor(device, options, rng, BarnPhysics(rng))


def _camera(device: SimDevice, options: ModelOptions) -> DeviceModel:
    rng = device_rng(options.seed, device.device_id)
    return _sensor(device, options, rng, CameraPhysics(device.device_id, rng))


def _speaker(device: SimDevice, options: ModelOptions) -> DeviceModel:
    return SpeakerModel(device.device_id, device_rng(options.seed, device.device_id),
                        options.start, options.behaviour(device.device_id), options.timing,
                        options.interval_s("speaker"), options.stagger)


BUILDERS: dict[str, Callable[[SimDevice, ModelOptions], DeviceModel]] = {
    "water_meter": _water_meter,
    "water_quality": _water_quality,
    "barn": _barn,
    "camera": _camera,
    "speaker": _speaker,
}


def build_model(device: SimDevice, options: ModelOptions) -> DeviceModel:
    """The model of one device; a kind without a simulator is an error naming it."""
    builder = BUILDERS.get(device.kind)
    if builder is None:
        raise ValueError(f"{device.device_id}: no simulator for kind {device.kind!r}"
                         f" (simulated: {', '.join(sorted(BUILDERS))})")
    return builder(device, options)


@dataclass
class Built:
    """The models of a population: those with a connection of their own, and every model."""

    connected: list[DeviceModel]
    by_id: dict[str, DeviceModel]
    carrier: dict[str, str]  # child id -> the gateway that carries it


def build_models(devices: Sequence[SimDevice], options: ModelOptions) -> Built:
    """Build every model; a device whose gateway is in the population rides on that gateway."""
    ids = [d.device_id for d in devices]
    if len(set(ids)) != len(ids):
        repeated = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"device {repeated} is listed twice")
    present = {d.device_id for d in devices if d.kind == "gateway"}
    children: dict[str, list[DeviceModel]] = {gateway: [] for gateway in present}
    built = Built([], {}, {})
    for device in devices:
        if device.kind == "gateway":
            continue
        model = build_model(device, options)
        built.by_id[device.device_id] = model
        if device.gateway_id in present:
            children[device.gateway_id].append(model)
            built.carrier[device.device_id] = device.gateway_id
        else:
            built.connected.append(model)
    for device in devices:
        if device.kind == "gateway":
            gateway = GatewayModel(device.device_id, children[device.device_id],
                                   device_rng(options.seed, device.device_id), options.start,
                                   options.interval_s("gateway"), options.stagger)
            built.by_id[device.device_id] = gateway
            built.connected.append(gateway)
    return built
