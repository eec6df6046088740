"""The per-speaker delivery state machine and the send/hold decision (pure).

Acknowledgements, time and the operator drive a delivery through the table below; anything
not in the table leaves the state as it is (a late `accepted` after `done`, an ack after a
cancel, a second `expired` pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from broadcast.model import DeliveryState as S


class Happening(StrEnum):
    """What can happen to a delivery."""

    SEND_ONLINE = "send_online"  # published to a speaker we believe online
    SEND_OFFLINE = "send_offline"  # published for the broker to queue; the speaker is away
    HOLD = "hold"  # not published: the speaker is busy with a higher priority
    WENT_OFFLINE = "went_offline"
    ACK_ACCEPTED = "accepted"
    ACK_DONE = "done"
    ACK_REJECTED = "rejected"
    ACK_FAILED = "failed"
    EXPIRE = "expire"
    CANCEL = "cancel"


_WAITING = (S.QUEUED, S.HELD, S.OFFLINE)
_OPEN = (*_WAITING, S.SENT, S.ACCEPTED)


def _table() -> dict[tuple[S, Happening], S]:
    table: dict[tuple[S, Happening], S] = {}
    for state in (*_WAITING, S.SENT):
        table[state, Happening.SEND_ONLINE] = S.SENT
    for state in _WAITING:
        table[state, Happening.SEND_OFFLINE] = S.OFFLINE
        table[state, Happening.HOLD] = S.HELD
        table[state, Happening.EXPIRE] = S.EXPIRED
    table[S.SENT, Happening.WENT_OFFLINE] = S.OFFLINE
    # A retry finds the speaker busy with a higher priority: wait instead of being refused.
    table[S.SENT, Happening.HOLD] = S.HELD
    table[S.SENT, Happening.EXPIRE] = S.NO_ANSWER
    for state in _OPEN:
        table[state, Happening.ACK_ACCEPTED] = S.ACCEPTED
        table[state, Happening.ACK_DONE] = S.DONE
        table[state, Happening.ACK_REJECTED] = S.REJECTED
        table[state, Happening.ACK_FAILED] = S.FAILED
        table[state, Happening.CANCEL] = S.CANCELLED
    return table


TRANSITIONS: Mapping[tuple[S, Happening], S] = _table()

ACK_HAPPENINGS: Mapping[str, Happening] = {
    "accepted": Happening.ACK_ACCEPTED,
    "done": Happening.ACK_DONE,
    "rejected": Happening.ACK_REJECTED,
    "failed": Happening.ACK_FAILED,
}

# A speaker is busy with a broadcast while its delivery is in one of these states.
IN_PROGRESS = (S.SENT, S.ACCEPTED)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One speaker's copy of a broadcast, as the engine reads it."""

    broadcast_id: str
    device_id: str
    state: str
    priority_rank: int
    last_sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Change:
    """One delivery moving from `old` to `new` at `at` (a publish if `sent`)."""

    broadcast_id: str
    device_id: str
    old: S
    new: S
    at: datetime
    sent: bool = False
    reason: str | None = None
    accepted_at: datetime | None = None  # when it first confirmed, if this change confirms


def advance(state: S, happening: Happening) -> S | None:
    """The state after `happening`, or None if it changes nothing."""
    return TRANSITIONS.get((state, happening))


def changes_for(rows: Iterable[DeliveryRow], happening: Happening, at: datetime) -> list[Change]:
    """What `happening` does to each of these deliveries (those it leaves alone left out)."""
    changes = []
    for row in rows:
        old = S(row.state)
        new = advance(old, happening)
        if new is not None and new != old:
            changes.append(Change(row.broadcast_id, row.device_id, old, new, at))
    return changes


def plan_sends(rank: int, device_ids: Iterable[str], online: Callable[[str], bool],
               busy_rank: Mapping[str, int]) -> dict[str, Happening]:
    """For each speaker, send now (online or into the broker's queue) or hold.

    A speaker busy with a strictly higher priority is held, so we never interrupt it; an
    equal or lower one is interrupted by the device itself, as the contract says.
    """
    plan = {}
    for device_id in device_ids:
        if busy_rank.get(device_id, -1) > rank:
            plan[device_id] = Happening.HOLD
        elif online(device_id):
            plan[device_id] = Happening.SEND_ONLINE
        else:
            plan[device_id] = Happening.SEND_OFFLINE
    return plan


def retry_due(last_sent_at: datetime | None, now: datetime, interval: timedelta) -> bool:
    """Whether an unanswered delivery should be published again (with the same id)."""
    return last_sent_at is None or now - last_sent_at >= interval
