"""Time for simulators: an injected clock, and the local zone household patterns follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

# Villages live on Beijing time; daily patterns (peaks, quiet nights) follow local hours.
LOCAL_TZ = timezone(timedelta(hours=8), "CST")


class Clock(Protocol):
    """Where a simulator gets `now` from (a fake in tests, the wall clock otherwise)."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The wall clock, in the villages' local zone."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return datetime.now(UTC).astimezone(LOCAL_TZ)


def local_hour(now: datetime) -> float:
    """The local hour of day as a fraction (08:30 is 8.5)."""
    local = now.astimezone(LOCAL_TZ)
    return local.hour + local.minute / 60 + local.second / 3600
