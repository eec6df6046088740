"""How a simulated device takes commands: parse with the contract's union, ack per behaviour."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import orjson
from pydantic import TypeAdapter, ValidationError

from devices.models import Command
from ground.validation import first_error
from simulators import payloads
from simulators.payloads import Outgoing

BehaviourName = Literal["normal", "offline", "never_ack", "late_ack"]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a simulated device misbehaves towards the platform (or does not)."""

    name: BehaviourName = "normal"
    ack_delay_s: float = 0.0


NORMAL = Behaviour()
OFFLINE = Behaviour("offline")
NEVER_ACK = Behaviour("never_ack")


def late_ack(seconds: float) -> Behaviour:
    """A device that acts at once but acknowledges `seconds` late."""
    if seconds <= 0:
        raise ValueError("late_ack needs a positive delay")
    return Behaviour("late_ack", seconds)


_COMMAND = TypeAdapter(Command)


@dataclass(frozen=True, slots=True)
class BadCommand:
    """A command that could not be parsed; `command_id` is set when one could be read."""

    command_id: str | None
    reason: str


def parse_command(raw: bytes) -> Command | BadCommand:
    """Parse a cmd payload with the contract's Command union, or say why not."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return BadCommand(None, "not JSON")
    command_id = document.get("id") if isinstance(document, dict) else None
    if not isinstance(command_id, str) or not 1 <= len(command_id) <= 64:
        command_id = None
    try:
        return _COMMAND.validate_python(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "union_tag_invalid":
            return BadCommand(command_id, f"unknown op {document.get('op')!r}")
        return BadCommand(command_id, f"invalid command: {first_error(exc, 'command')}")


@dataclass
class Acker:
    """Sends acknowledgements at once, late, or never, as the device's behaviour says."""

    device_id: str
    behaviour: Behaviour = NORMAL
    _pending: list[tuple[datetime, int, Outgoing]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def ack(self, out: list[Outgoing], command_id: str, result: str, now: datetime,
            reason: str | None = None) -> None:
        """Acknowledge a command now (into `out`), later, or never."""
        if self.behaviour.name == "never_ack":
            return
        message = payloads.ack(self.device_id, command_id, result, now, reason)
        if self.behaviour.name == "late_ack":
            due = now + timedelta(seconds=self.behaviour.ack_delay_s)
            heapq.heappush(self._pending, (due, next(self._order), message))
            return
        out.append(message)

    def release(self, now: datetime) -> list[Outgoing]:
        """The late acknowledgements whose time has come."""
        due: list[Outgoing] = []
        while self._pending and self._pending[0][0] <= now:
            due.append(heapq.heappop(self._pending)[2])
        return due

    def next_due(self) -> datetime | None:
        """When the next late acknowledgement is due, if any is waiting."""
        return self._pending[0][0] if self._pending else None


@dataclass(frozen=True, slots=True)
class Screened:
    """A received command after the checks every device makes before acting."""

    command_id: str | None  # None: no readable id, so nothing can be acked
    duplicate: bool = False
    command: Command | None = None  # set when the command may run
    reason: str | None = None  # set when it must be rejected


def screen(raw: bytes, seen: set[str], now: datetime) -> Screened:
    """Parse, drop a repeated id (acted on once), reject the unparseable and the expired."""
    parsed = parse_command(raw)
    command_id = parsed.command_id if isinstance(parsed, BadCommand) else parsed.id
    if command_id is None:
        return Screened(None)
    if command_id in seen:
        return Screened(command_id, duplicate=True)
    seen.add(command_id)
    if isinstance(parsed, BadCommand):
        return Screened(command_id, reason=parsed.reason)
    if parsed.expires_at is not None and parsed.expires_at <= now:
        return Screened(command_id, reason="expired")
    return Screened(command_id, command=parsed)
