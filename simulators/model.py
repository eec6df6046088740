"""What every simulated device model offers the engines that drive it (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from simulators.faults import Faults
from simulators.payloads import Outgoing


class DeviceModel(Protocol):
    """A simulated device: it says when it next has something to do and what it publishes."""

    device_id: str
    kind: str
    faults: Faults

    def next_due(self) -> datetime:
        """When this device next acts on its own."""
        ...

    def poll(self, now: datetime) -> list[Outgoing]:
        """Everything the device publishes by `now`."""
        ...

    def resume(self, now: datetime) -> None:
        """Back on the network: skip what would have happened while it was off."""
        ...

    def handle_command(self, raw: bytes, now: datetime) -> list[Outgoing]:
        """React to a payload received on the device's cmd topic."""
        ...


def earliest(*times: datetime | None) -> datetime:
    """The earliest of the times that are set (a model's next due time from its timers)."""
    return min(t for t in times if t is not None)
