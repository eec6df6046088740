"""A device's online/offline transitions: what counts as one, and why. No I/O.

The writers (ingest for what devices say or that they were heard, the alerting time pass
for silence) ask these functions for the state a device is in now; the store records a
change only where it differs from the state last recorded (devices/status_history_store.py).
Online means what the `device_status` view says: it did not say it was offline, and it was
heard within its kind's silence limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# Why a device's state changed, as the history records it.
REPORTED_OFFLINE = "reported_offline"  # a status `offline`: the device's own or its Last Will
REPORTED_ONLINE = "reported_online"  # a status `online` (the device's birth message)
SILENT = "silent"  # not heard for longer than its kind's limit
HEARD_AGAIN = "heard_again"  # a message after being offline
FIRST_HEARD = "first_heard"  # the first message ever stored
REASONS = (REPORTED_OFFLINE, REPORTED_ONLINE, SILENT, HEARD_AGAIN, FIRST_HEARD)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device's state from `at` on, and why."""

    device_id: str
    at: datetime
    online: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Heard:
    """What one stored batch says of a device, beside the state it is now reported in."""

    device_id: str
    last_seen: datetime | None  # newest message heard from it in the batch
    state: str | None  # the status the batch carried, if any
    state_at: datetime | None
    reported_state: str | None  # the device's reported state after the batch


def after_heard(heard: Heard, recorded_online: bool | None) -> StatusChange | None:
    """The state a batch puts a device in, or None if it says nothing new.

    `recorded_online` is the state last recorded (None: nothing recorded yet). A status
    `offline` makes it offline at once; while its reported state stays `offline`, readings
    do not bring it back (as the status view sees it); otherwise being heard makes it online.
    """
    if heard.state == "offline":
        change = StatusChange(heard.device_id, _at(heard.state_at, heard.last_seen), False,
                              REPORTED_OFFLINE)
    elif heard.reported_state == "offline" or heard.last_seen is None:
        return None
    elif heard.state == "online":
        change = StatusChange(heard.device_id, _at(heard.state_at, heard.last_seen), True,
                              REPORTED_ONLINE)
    else:
        reason = FIRST_HEARD if recorded_online is None else HEARD_AGAIN
        change = StatusChange(heard.device_id, heard.last_seen, True, reason)
    return None if change.online == recorded_online else change


def _at(state_at: datetime | None, last_seen: datetime | None) -> datetime:
    at = state_at or last_seen
    assert at is not None, "a status always comes with the time it was received"
    return at


def after_silence(recorded_online: Iterable[str], last_seen: Mapping[str, datetime | None],
                  limit_s: Mapping[str, float], now: datetime) -> list[StatusChange]:
    """Devices recorded online that have been silent past their limit by `now`, offline
    from the moment the limit passed. `last_seen` and `limit_s` are by device id; a device
    missing from either (retired, unknown) is left alone."""
    changes = []
    for device_id in recorded_online:
        seen = last_seen.get(device_id)
        limit = limit_s.get(device_id)
        if seen is None or limit is None:
            continue
        crossed = seen + timedelta(seconds=limit)
        if crossed <= now:
            changes.append(StatusChange(device_id, crossed, False, SILENT))
    return changes
