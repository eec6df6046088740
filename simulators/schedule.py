"""A periodic report schedule: readings are stamped with their slot, so data is deterministic."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Every:
    """Slots `interval` apart; `next_at` is the next slot not yet reported."""

    interval: timedelta
    next_at: datetime

    @classmethod
    def staggered(cls, start: datetime, interval_s: float, rng: random.Random,
                  stagger: bool = True) -> Every:
        """A schedule whose first slot is at a random phase within one interval of `start`."""
        interval = timedelta(seconds=interval_s)
        phase = timedelta(seconds=rng.uniform(0, interval_s)) if stagger else timedelta(0)
        return cls(interval, start + phase)

    def take(self, now: datetime) -> datetime | None:
        """The slot due at `now` (and move on), or None; slots missed by a lagging loop are skipped."""
        if now < self.next_at:
            return None
        slot = self.next_at
        self.next_at = slot + self.interval
        if self.next_at <= now:
            missed = (now - self.next_at) // self.interval + 1
            self.next_at += self.interval * missed
        return slot
