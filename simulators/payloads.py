"""Outgoing messages, built only from the `devices/` models and topics (never our own format)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from devices.models import CommandAck, Event, telemetry_model
from devices.topics import Channel, topic


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message a simulated device publishes: whose, on which channel, what."""

    device_id: str
    channel: Channel
    payload: bytes
    retain: bool = False

    def topic(self, prefix: str) -> str:
        """The contract topic this message goes to."""
        return topic(prefix, self.device_id, self.channel)


def reading_set(kind: str, ts: datetime, values: Mapping[str, float | bool],
                seq: int | None = None) -> dict[str, Any]:
    """One reading set of a kind, validated by the kind's telemetry model."""
    return telemetry_model(kind)(ts=ts, seq=seq, **values).to_payload()


def telemetry(device_id: str, body: dict[str, Any] | Sequence[dict[str, Any]]) -> Outgoing:
    """A telemetry message: one reading set, or an array (store-and-forward)."""
    return Outgoing(device_id, Channel.TELEMETRY, orjson.dumps(body))


def gateway_telemetry(gateway_id: str, children: Mapping[str, Any]) -> Outgoing:
    """A gateway message carrying its children's telemetry, keyed by child id."""
    return Outgoing(gateway_id, Channel.GATEWAY_TELEMETRY, orjson.dumps(dict(children)))


def event(device_id: str, ts: datetime, type_: str, severity: str = "info",
          detail: dict[str, Any] | None = None, snapshot_url: str | None = None) -> Outgoing:
    """An event message, validated by the contract's Event model."""
    model = Event.model_validate({"ts": ts, "type": type_, "severity": severity,
                                  "detail": detail, "snapshot_url": snapshot_url})
    return Outgoing(device_id, Channel.EVENT,
                    orjson.dumps(model.model_dump(mode="json", exclude_none=True)))


def ack(device_id: str, command_id: str, result: str, ts: datetime,
        reason: str | None = None) -> Outgoing:
    """A command acknowledgement, validated by the contract's CommandAck model."""
    model = CommandAck.model_validate({"id": command_id, "result": result, "ts": ts,
                                       "reason": reason})
    return Outgoing(device_id, Channel.COMMAND_ACK,
                    orjson.dumps(model.model_dump(mode="json", exclude_none=True)))


def status(device_id: str, state: str) -> Outgoing:
    """The retained status a device publishes (`online`; its Last Will says `offline`)."""
    return Outgoing(device_id, Channel.STATUS, state.encode(), retain=True)
