"""What speakers send the broadcast daemon: acknowledgements and presence (pure).

Decoding never raises into the message loop: a bad payload becomes a `BadMessage` with the
reason, which the daemon dead-letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from broadcast.delivery import ACK_HAPPENINGS, Happening
from devices.decode import Limits, Rejection, decode_status, parse_json
from devices.models import CommandAck
from devices.topics import Channel, TopicError, parse_topic
from ground.validation import first_error

_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Ack:
    """A speaker's answer to a command, stamped with when we received it."""

    device_id: str
    command_id: str
    happening: Happening
    reason: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Presence:
    """A speaker's retained status: online or not."""

    device_id: str
    online: bool


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A message that does not follow the contract, and why."""

    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes


def _ack(device_id: str, name: str, payload: bytes, at: datetime) -> Ack | BadMessage:
    document = parse_json(payload, _LIMITS)
    if isinstance(document, Rejection):
        return BadMessage(name, device_id, document.reason.value, document.detail, payload)
    try:
        ack = CommandAck.model_validate(document)
    except ValidationError as exc:
        return BadMessage(name, device_id, "bad_ack", first_error(exc, "ack"), payload)
    return Ack(device_id, ack.id, ACK_HAPPENINGS[ack.result], ack.reason, at)


def _presence(device_id: str, name: str, payload: bytes,
              at: datetime) -> Presence | BadMessage | None:
    if not payload:
        return None  # a cleared retained status says nothing
    status = decode_status(payload, _LIMITS)
    if isinstance(status, Rejection):
        return BadMessage(name, device_id, status.reason.value, status.detail, payload)
    return Presence(device_id, status.state == "online")


_DECODERS = {Channel.COMMAND_ACK: _ack, Channel.STATUS: _presence}


def decode(prefix: str, name: str, payload: bytes,
           at: datetime) -> Ack | Presence | BadMessage | None:
    """Decode a message on an ack or status topic (None: nothing to do)."""
    try:
        parsed = parse_topic(prefix, name)
    except TopicError as exc:
        return BadMessage(name, None, "bad_topic", str(exc), payload)
    decoder = _DECODERS.get(parsed.channel)
    if decoder is None:
        return BadMessage(name, parsed.device_id, "bad_topic",
                          f"the broadcast daemon does not read {parsed.channel.value}", payload)
    return decoder(parsed.device_id, name, payload, at)
