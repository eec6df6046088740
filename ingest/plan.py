"""Turn a batch of received messages into what the writer stores (pure).

Two steps, so the registry can be consulted in between with one query per batch: `parse`
reads each topic and payload, `referenced_devices` lists the ids the batch needs from the
registry, and `plan_batch` admits, decodes and sorts everything into readings, events,
presence updates, pending devices and dead letters. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devices.contract import is_valid_device_id
from devices.decode import (
    Decoded,
    EventRecord,
    Limits,
    Reading,
    decode_events,
    decode_status,
    decode_telemetry,
    parse_json,
    split_gateway,
)
from devices.rejection import Reason, Rejection
from devices.storable import clean_text
from devices.topics import Channel, Topic, TopicError, parse_topic
from ingest.admit import Admitted, Registry, admit, admit_child, admit_gateway
from ingest.handoff import Message

# The channels ingest subscribes to; anything else on its subscriptions is a bad topic.
INGESTED = frozenset((Channel.TELEMETRY, Channel.EVENT, Channel.STATUS,
                      Channel.GATEWAY_TELEMETRY))
# Channels whose payload is JSON parsed up front (status has its own bare-word form).
_JSON_CHANNELS = frozenset((Channel.TELEMETRY, Channel.EVENT, Channel.GATEWAY_TELEMETRY))
PENDING_DETAIL = "recorded as pending"
# A hostile message can carry a million problems; the dead letter keeps the first ones.
MAX_PROBLEMS = 100


@dataclass(slots=True)
class Parsed:
    """A message with its topic and JSON document read, or the reason it cannot be."""

    message: Message
    topic: Topic | None = None
    document: object = None
    rejection: Rejection | None = None


def parse(message: Message, prefix: str, limits: Limits) -> Parsed:
    """Read a message's topic and (for JSON channels) its payload; never raises."""
    try:
        return _parse(message, prefix, limits)
    except Exception as exc:  # noqa: BLE001 - one message's bug must not stop the stream
        return Parsed(message, rejection=internal_error(exc))


def internal_error(exc: BaseException) -> Rejection:
    """The refusal of a message whose handling raised: the exception's type, nothing of its
    text (which may quote the payload, or a secret)."""
    return Rejection(Reason.INTERNAL_ERROR, f"handling it raised {type(exc).__name__}")


def _parse(message: Message, prefix: str, limits: Limits) -> Parsed:
    try:
        topic = parse_topic(prefix, message.topic)
    except TopicError as exc:
        return Parsed(message, rejection=Rejection(Reason.BAD_TOPIC, str(exc)))
    if topic.channel not in INGESTED:
        return Parsed(message, topic, rejection=Rejection(
            Reason.BAD_TOPIC, f"channel {topic.channel.value} is not one ingest takes"))
    if topic.channel not in _JSON_CHANNELS:
        return Parsed(message, topic)
    document = parse_json(message.payload, limits)
    if isinstance(document, Rejection):
        return Parsed(message, topic, rejection=document)
    return Parsed(message, topic, document)


def referenced_devices(batch: Iterable[Parsed]) -> set[str]:
    """Every device id the batch needs from the registry: topic owners and gateway children."""
    ids: set[str] = set()
    for item in batch:
        if item.topic is None:
            continue
        ids.add(item.topic.device_id)
        if item.rejection is None and item.topic.channel is Channel.GATEWAY_TELEMETRY \
                and isinstance(item.document, dict):
            # Only keys that are device ids: anything else is refused, never looked up.
            ids.update(key for key in item.document
                       if isinstance(key, str) and is_valid_device_id(key))
    return ids


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused message, as stored in `dead_letters`."""

    topic: str
    device_id: str | None
    reason: str
    detail: str
    problems: list[dict[str, Any]]
    partial: bool
    payload: bytes
    payload_bytes: int
    received_at: datetime


@dataclass(slots=True)
class Presence:
    """What the batch says about one device's presence (merged per device)."""

    device_id: str
    last_seen: datetime | None = None
    state: str | None = None
    state_at: datetime | None = None
    firmware: str | None = None
    ip: str | None = None


@dataclass(slots=True)
class Pending:
    """An unregistered device heard in discovery mode."""

    device_id: str
    first_seen: datetime
    last_seen: datetime
    last_topic: str
    messages: int = 1


@dataclass(frozen=True, slots=True)
class Policy:
    """The deployment's choices that shape a plan."""

    limits: Limits = field(default_factory=Limits)
    discovery: bool = False
    dead_letter_payload_bytes: int = 4096


@dataclass(slots=True)
class BatchPlan:
    """Everything one batch stores, in one transaction."""

    readings: list[Reading] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    presence: dict[str, Presence] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    unknown_metrics: int = 0
    messages: int = 0
    internal_errors: int = 0
    latest_received_at: datetime | None = None


class _Outcome:
    """What one message yielded while it is being planned."""

    __slots__ = ("rejections", "stored")

    def __init__(self) -> None:
        self.rejections: list[Rejection] = []
        self.stored = 0


def plan_batch(batch: Iterable[Parsed], registry: Registry, policy: Policy) -> BatchPlan:
    """Admit and decode a parsed batch into rows to store and dead letters."""
    plan = BatchPlan()
    for item in batch:
        plan.messages += 1
        if plan.latest_received_at is None or item.message.received_at > plan.latest_received_at:
            plan.latest_received_at = item.message.received_at
        outcome = _Outcome()
        if item.rejection is not None:
            outcome.rejections.append(item.rejection)
        else:
            _plan_guarded(item, registry, policy, plan, outcome)
        if outcome.rejections:
            if outcome.rejections[0].reason is Reason.INTERNAL_ERROR:
                plan.internal_errors += 1
            plan.dead_letters.append(
                dead_letter(item, outcome.rejections, policy, partial=outcome.stored > 0))
    return plan


def _plan_guarded(item: Parsed, registry: Registry, policy: Policy, plan: BatchPlan,
                  outcome: _Outcome) -> None:
    """Plan one message; if that raises, take back the rows it added and refuse it instead.

    (Decoding comes before any presence is recorded, so what could remain is only that
    earlier children of a gateway message were heard, which is true.)"""
    assert item.topic is not None  # a parsed message without a rejection has a topic
    readings, events, unknown = len(plan.readings), len(plan.events), plan.unknown_metrics
    try:
        _PLANNERS[item.topic.channel](item, registry, policy, plan, outcome)
    except Exception as exc:  # noqa: BLE001 - one message's bug must not stop the stream
        del plan.readings[readings:], plan.events[events:]
        plan.unknown_metrics = unknown
        outcome.stored = 0
        outcome.rejections[:] = [internal_error(exc)]


def _admitted(
    item: Parsed, admitted: Admitted | Rejection, policy: Policy, plan: BatchPlan,
    outcome: _Outcome,
) -> Admitted | None:
    if isinstance(admitted, Admitted):
        return admitted
    if admitted.reason is Reason.UNKNOWN_DEVICE and policy.discovery:
        assert item.topic is not None
        _record_pending(plan, item.topic.device_id, item.message)
        admitted = Rejection(admitted.reason, f"{admitted.detail}; {PENDING_DETAIL}")
    outcome.rejections.append(admitted)
    return None


def _record_pending(plan: BatchPlan, device_id: str, message: Message) -> None:
    seen = plan.pending.get(device_id)
    if seen is None:
        plan.pending[device_id] = Pending(device_id, message.received_at, message.received_at,
                                          message.topic)
        return
    seen.messages += 1
    seen.first_seen = min(seen.first_seen, message.received_at)
    if message.received_at >= seen.last_seen:
        seen.last_seen = message.received_at
        seen.last_topic = message.topic


def _heard(plan: BatchPlan, device_id: str, at: datetime) -> None:
    presence = plan.presence.get(device_id)
    if presence is None:
        plan.presence[device_id] = Presence(device_id, last_seen=at)
    elif presence.last_seen is None or at > presence.last_seen:
        presence.last_seen = at


def _take(decoded: Decoded, plan: BatchPlan, outcome: _Outcome, child: str | None = None) -> None:
    plan.readings.extend(decoded.readings)
    plan.events.extend(decoded.events)
    plan.unknown_metrics += decoded.unknown_metrics
    outcome.stored += len(decoded.readings) + len(decoded.events)
    if child is None:
        outcome.rejections.extend(decoded.rejections)
    else:
        outcome.rejections.extend(
            Rejection(r.reason, f"{child}: {r.detail}", r.entry, r.metric)
            for r in decoded.rejections
        )


def _decode_own_telemetry(admitted: Admitted, item: Parsed, policy: Policy) -> Decoded:
    return decode_telemetry(admitted.device_id, item.document, admitted.kind,
                            item.message.received_at, policy.limits)


def _decode_own_events(admitted: Admitted, item: Parsed, policy: Policy) -> Decoded:
    return decode_events(admitted.device_id, item.document, item.message.received_at,
                         policy.limits)


_OWN_DECODERS: dict[Channel, Callable[[Admitted, Parsed, Policy], Decoded]] = {
    Channel.TELEMETRY: _decode_own_telemetry,
    Channel.EVENT: _decode_own_events,
}


def _plan_own(item: Parsed, registry: Registry, policy: Policy, plan: BatchPlan,
              outcome: _Outcome) -> None:
    """A device publishing telemetry or events on its own topic."""
    assert item.topic is not None
    admitted = _admitted(item, admit(registry, item.topic.device_id), policy, plan, outcome)
    if admitted is None:
        return
    decoded = _OWN_DECODERS[item.topic.channel](admitted, item, policy)
    _heard(plan, admitted.device_id, item.message.received_at)
    _take(decoded, plan, outcome)


def _plan_gateway(item: Parsed, registry: Registry, policy: Policy, plan: BatchPlan,
                  outcome: _Outcome) -> None:
    assert item.topic is not None
    gateway_id = item.topic.device_id
    admitted = _admitted(item, admit_gateway(registry, gateway_id), policy, plan, outcome)
    if admitted is None:
        return
    received_at = item.message.received_at
    _heard(plan, gateway_id, received_at)
    children, rejections = split_gateway(item.document)
    outcome.rejections.extend(rejections)
    for child_id, document in children:
        child = admit_child(registry, gateway_id, child_id)
        if isinstance(child, Rejection):
            outcome.rejections.append(child)
            continue
        decoded = decode_telemetry(child_id, document, child.kind, received_at, policy.limits)
        _heard(plan, child_id, received_at)
        _take(decoded, plan, outcome, child=child_id)


def _plan_status(item: Parsed, registry: Registry, policy: Policy, plan: BatchPlan,
                 outcome: _Outcome) -> None:
    assert item.topic is not None
    if not item.message.payload:
        return  # clearing a retained status says nothing about the device
    admitted = _admitted(item, admit(registry, item.topic.device_id), policy, plan, outcome)
    if admitted is None:
        return
    status = decode_status(item.message.payload, policy.limits)
    if isinstance(status, Rejection):
        outcome.rejections.append(status)
        return
    received_at = item.message.received_at
    presence = plan.presence.setdefault(admitted.device_id, Presence(admitted.device_id))
    # A retained replay is an old statement, and a Last Will is the broker speaking: neither
    # means we heard from the device now.
    if status.state == "online" and not item.message.retain:
        _heard(plan, admitted.device_id, received_at)
    presence.state = status.state
    presence.state_at = received_at
    presence.firmware = status.fw or presence.firmware
    presence.ip = status.ip or presence.ip
    outcome.stored += 1


_PLANNERS: dict[Channel, Callable[[Parsed, Registry, Policy, BatchPlan, _Outcome], None]] = {
    Channel.TELEMETRY: _plan_own,
    Channel.EVENT: _plan_own,
    Channel.GATEWAY_TELEMETRY: _plan_gateway,
    Channel.STATUS: _plan_status,
}


def dead_letter(item: Parsed, rejections: list[Rejection], policy: Policy,
                partial: bool = False) -> DeadLetter:
    """The dead letter of a message refused for these reasons (the first one leads)."""
    first = rejections[0]
    more = len(rejections) - 1
    detail = first.detail if more == 0 else f"{first.detail} (and {more} more)"
    payload = item.message.payload
    return DeadLetter(
        topic=clean_text(item.message.topic),
        device_id=item.topic.device_id if item.topic else None,
        reason=first.reason.value,
        detail=clean_text(detail),
        problems=[{**rejection.as_json(), "detail": clean_text(rejection.detail)}
                  for rejection in rejections[:MAX_PROBLEMS]],
        partial=partial,
        payload=payload[: policy.dead_letter_payload_bytes],
        payload_bytes=len(payload),
        received_at=item.message.received_at,
    )
