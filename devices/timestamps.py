"""When a reading or event happened: `ts` parsed and checked against the time of receipt (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devices.contract import Limits
from devices.rejection import Reason, Rejection, shown


def parse_timestamp(raw: object, received_at: datetime, limits: Limits) -> datetime | Rejection:
    """Parse `ts` (RFC 3339 with an offset, or epoch milliseconds) and check it is plausible."""
    if raw is None:
        return received_at
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return Rejection(Reason.BAD_TIMESTAMP, f"ts must be RFC 3339 or epoch ms, got {shown(raw)}")
    if isinstance(raw, int):
        try:
            ts = datetime.fromtimestamp(raw / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return Rejection(Reason.BAD_TIMESTAMP, f"ts {raw} ms is outside any calendar")
    else:
        try:
            if len(raw) > 40:
                raise ValueError(raw)
            ts = datetime.fromisoformat(raw)
        except ValueError:
            return Rejection(Reason.BAD_TIMESTAMP, f"ts {shown(raw)} is not RFC 3339")
        if ts.tzinfo is None:
            return Rejection(Reason.BAD_TIMESTAMP, f"ts {shown(raw)} has no UTC offset")
    if ts > received_at + limits.future_tolerance:
        return Rejection(
            Reason.TS_IN_FUTURE, f"ts {ts.isoformat()} is {_ago(ts - received_at)} in the future"
        )
    if ts < received_at - limits.accepted_lateness:
        hint = " (epoch seconds? the contract wants milliseconds)" if isinstance(raw, int) else ""
        return Rejection(
            Reason.TS_TOO_OLD,
            f"ts {ts.isoformat()} is older than the accepted lateness of "
            f"{_ago(limits.accepted_lateness)}{hint}",
        )
    return ts


def _ago(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


@dataclass(frozen=True, slots=True)
class Window:
    """The plausible `ts` range for one message, computed once rather than per reading."""

    earliest: datetime
    latest: datetime
    # The same range in epoch milliseconds, a little wider: only what falls inside takes
    # the fast path (anything else, even beyond datetime's calendar, takes the careful one).
    earliest_ms: int
    latest_ms: int


def plausible_window(received_at: datetime, limits: Limits) -> Window:
    earliest = received_at - limits.accepted_lateness
    latest = received_at + limits.future_tolerance
    return Window(earliest, latest, math.floor(earliest.timestamp() * 1000) - 1,
                  math.ceil(latest.timestamp() * 1000) + 1)
