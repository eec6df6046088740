"""A reporting device, pure: a kind's physics sampled on a schedule, with faults and batching.

The kinds (water meter, probe, barn, camera) differ only in their physics; scheduling,
store-and-forward batching (NB-IoT), silence, sequence numbers and commands are here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from devices.contract import MAX_ENTRIES_PER_MESSAGE
from devices.models import CommandBase
from simulators import payloads
from simulators.commands import NORMAL, Acker, Behaviour, screen
from simulators.faults import Faults
from simulators.model import earliest
from simulators.payloads import Outgoing

# A device that was cut off keeps at most this many reading sets to send later.
MAX_BUFFERED = 4 * MAX_ENTRIES_PER_MESSAGE


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event a physics model raises at a slot."""

    type: str
    severity: str = "info"
    detail: dict[str, Any] | None = None
    snapshot_url: str | None = None
    at: datetime | None = None  # when during the interval it happened; the slot if None


@dataclass(slots=True)
class Sample:
    """What a device measured at one slot, and the events it raised."""

    values: dict[str, float | bool]
    events: list[EventSpec] = field(default_factory=list)


# A command handler returns None when done, or the reason it was rejected.
CommandHandler = Callable[[CommandBase, datetime], str | None]


class Physics(Protocol):
    """What a kind's model computes: a sample per slot, and the commands it takes."""

    kind: str
    commands: Mapping[str, CommandHandler]

    def sample(self, slot: datetime, interval_h: float, faults: Faults) -> Sample:
        """The reading set (and events) at `slot`, the state advanced by one interval."""
        ...


class SensorDevice:
    """A device that reports its physics every `interval_s`, one message or a day's batch."""

    def __init__(self, device_id: str, physics: Physics, rng: random.Random, start: datetime,
                 interval_s: float, upload_every_s: float | None = None,
                 behaviour: Behaviour = NORMAL, stagger: bool = True) -> None:
        self.device_id = device_id
        self.kind = physics.kind
        self.physics = physics
        self.faults = Faults()
        self.interval = timedelta(seconds=interval_s)
        phase = timedelta(seconds=rng.uniform(0, interval_s)) if stagger else timedelta(0)
        self._next_slot = start + phase
        # NB-IoT: sample every interval, upload the buffer once per `upload_every_s`.
        self._upload_every = timedelta(seconds=upload_every_s) if upload_every_s else None
        self._next_upload = (start + timedelta(seconds=rng.uniform(0, upload_every_s))
                             if upload_every_s else None)
        self._buffer: list[dict[str, Any]] = []
        self._seq = 0
        self._acker = Acker(device_id, behaviour)
        self._seen: set[str] = set()

    def next_due(self) -> datetime:
        """When this device next samples, uploads or sends a late ack."""
        return earliest(self._next_slot, self._next_upload, self._acker.next_due())

    def poll(self, now: datetime) -> list[Outgoing]:
        """Sample every slot up to `now`; publish readings (batched if several) and events."""
        out: list[Outgoing] = []
        interval_h = self.interval.total_seconds() / 3600
        while self._next_slot <= now:
            slot, self._next_slot = self._next_slot, self._next_slot + self.interval
            if self.faults.quiet(slot):
                continue
            sample = self.physics.sample(slot, interval_h, self.faults)
            self._buffer.append(payloads.reading_set(self.kind, slot, sample.values, self._seq))
            self._seq += 1
            out.extend(payloads.event(self.device_id, e.at or slot, e.type, e.severity, e.detail,
                                      e.snapshot_url) for e in sample.events)
        del self._buffer[:-MAX_BUFFERED]
        if self._upload_every is None or self._upload_due(now):
            out.extend(self._flush())
        out.extend(self._acker.release(now))
        return out

    def resume(self, now: datetime) -> None:
        """Back on the network after being off: slots missed meanwhile were never measured."""
        if self._next_slot <= now:
            missed = (now - self._next_slot) // self.interval + 1
            self._next_slot += self.interval * missed

    def handle_command(self, raw: bytes, now: datetime) -> list[Outgoing]:
        """Run a command the kind supports (set_valve on a meter), or reject it with a reason."""
        out: list[Outgoing] = []
        screened = screen(raw, self._seen, now)
        if screened.command_id is None or screened.duplicate:
            return out
        reason = screened.reason
        if screened.command is not None:
            handler = self.physics.commands.get(screened.command.op)
            reason = (f"unknown op {screened.command.op!r} for a {self.kind}" if handler is None
                      else handler(screened.command, now))
        command_id = screened.command_id
        self._acker.ack(out, command_id, "done" if reason is None else "rejected", now, reason)
        out.extend(self._acker.release(now))
        return out

    def _upload_due(self, now: datetime) -> bool:
        assert self._next_upload is not None and self._upload_every is not None
        if now < self._next_upload:
            return False
        while self._next_upload <= now:
            self._next_upload += self._upload_every
        return True

    def _flush(self) -> list[Outgoing]:
        if not self._buffer:
            return []
        buffered, self._buffer = self._buffer, []
        if len(buffered) == 1:
            return [payloads.telemetry(self.device_id, buffered[0])]
        return [payloads.telemetry(self.device_id, buffered[i:i + MAX_ENTRIES_PER_MESSAGE])
                for i in range(0, len(buffered), MAX_ENTRIES_PER_MESSAGE)]
