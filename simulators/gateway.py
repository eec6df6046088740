"""A gateway carrying devices that cannot speak MQTT themselves (pure).

Every interval it collects what its children measured and publishes it on its own
`gateway/telemetry` topic, keyed by child id; children's events pass through unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from devices.topics import Channel
from simulators import payloads
from simulators.faults import Faults
from simulators.model import DeviceModel
from simulators.payloads import Outgoing
from simulators.sensor import CommandHandler, Sample, SensorDevice

KIND = "gateway"


class GatewayModel:
    """One gateway and its children's models."""

    kind = KIND

    def __init__(self, device_id: str, children: Sequence[DeviceModel], rng: random.Random,
                 start: datetime, interval_s: float, stagger: bool = True) -> None:
        self.device_id = device_id
        self.children = {child.device_id: child for child in children}
        self._health = SensorDevice(device_id, _Health(len(children), rng), rng, start,
                                    interval_s, stagger=stagger)
        self.faults = self._health.faults

    def next_due(self) -> datetime:
        """The gateway forwards on its own schedule, whatever its children's."""
        return self._health.next_due()

    def poll(self, now: datetime) -> list[Outgoing]:
        """Own health, then one gateway message per round of the children's telemetry."""
        out = self._health.poll(now)
        if self.faults.quiet(now):
            return out  # children's readings wait in their buffers until it is back
        rounds: list[dict[str, orjson.Fragment]] = []
        for child in self.children.values():
            if child.next_due() > now:
                continue
            count = 0
            for message in child.poll(now):
                if message.channel is Channel.TELEMETRY:
                    if count == len(rounds):
                        rounds.append({})
                    rounds[count][child.device_id] = orjson.Fragment(message.payload)
                    count += 1
                else:
                    out.append(message)
        out.extend(payloads.gateway_telemetry(self.device_id, children) for children in rounds)
        return out

    def resume(self, now: datetime) -> None:
        """Back on the network: neither the gateway nor its children heard anything meanwhile."""
        self._health.resume(now)
        for child in self.children.values():
            child.resume(now)

    def handle_command(self, raw: bytes, now: datetime) -> list[Outgoing]:
        """Gateways take no commands of their own (the contract defines none)."""
        return self._health.handle_command(raw, now)


class _Health:
    kind = KIND
    commands: Mapping[str, CommandHandler] = {}

    def __init__(self, children: int, rng: random.Random) -> None:
        self._children = children
        self._rng = rng

    def sample(self, slot: datetime, interval_h: float, faults: Faults) -> Sample:
        """Children heard, enclosure temperature, mains-backed battery and backhaul signal."""
        rng = self._rng
        return Sample({"children_online": self._children,
                       "temperature_c": round(30 + rng.gauss(0, 1), 1),
                       "battery_v": round(13.2 + rng.gauss(0, 0.05), 2),
                       "rssi_dbm": round(-65 + rng.gauss(0, 2))})
