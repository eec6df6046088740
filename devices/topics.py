"""Topic names of the contract: built in one place, parsed in one place (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from devices.contract import DEVICE_ID_PATTERN


class Channel(StrEnum):
    """What a topic carries, named by the topic's suffix after the device id."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    COMMAND = "cmd"
    COMMAND_ACK = "cmd/ack"
    GATEWAY_TELEMETRY = "gateway/telemetry"


_CHANNEL_BY_SUFFIX = {channel.value: channel for channel in Channel}


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: whose it is and what it carries."""

    device_id: str
    channel: Channel


class TopicError(ValueError):
    """A topic that does not have the contract's shape."""


def topic(prefix: str, device_id: str, channel: Channel) -> str:
    """The topic on which `device_id` uses `channel`."""
    return f"{prefix}/{device_id}/{channel.value}"


def subscription(prefix: str, channel: Channel, share_group: str | None = None) -> str:
    """A filter matching `channel` of every device, shared within a group if one is given."""
    filter_ = f"{prefix}/+/{channel.value}"
    return f"$share/{share_group}/{filter_}" if share_group else filter_


def parse_topic(prefix: str, name: str) -> Topic:
    """Parse `{prefix}/{device_id}/{channel}`; TopicError says what is wrong."""
    parts = name.split("/", 2)
    if len(parts) != 3 or parts[0] != prefix:
        raise TopicError(f"topic must be {prefix}/{{device_id}}/{{channel}}")
    _, device_id, suffix = parts
    if not DEVICE_ID_PATTERN.fullmatch(device_id):
        raise TopicError("device id must be 3 to 64 characters of [A-Za-z0-9_.-]")
    channel = _CHANNEL_BY_SUFFIX.get(suffix)
    if channel is None:
        known = ", ".join(sorted(_CHANNEL_BY_SUFFIX))
        raise TopicError(f"unknown channel (known: {known})")
    return Topic(device_id, channel)
