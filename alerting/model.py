"""The values the alerting core passes around (pure, immutable)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal, NamedTuple

StateName = Literal["inactive", "pending", "firing"]


class Sample(NamedTuple):
    """One value of one metric at the device's time."""

    ts: datetime
    value: float


@dataclass(frozen=True)
class Subject:
    """What an alert is about: a device, or an area (for area rules) with no device."""

    device_id: str | None
    kind: str | None
    township: str | None
    village: str | None
    grid: str | None = None
    site: str | None = None
    gateway: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def labels(self) -> dict[str, str]:
        """The labels silences, inhibition and routes match on (None left out)."""
        pairs = {
            "device_id": self.device_id, "kind": self.kind, "township": self.township,
            "village": self.village, "grid": self.grid, "site": self.site,
            "gateway": self.gateway,
        }
        return {key: value for key, value in pairs.items() if value is not None}

    def identity(self) -> str:
        """The part of the labels that names the subject (device, else area)."""
        if self.device_id is not None:
            return f"device_id={self.device_id}"
        return f"township={self.township},village={self.village},grid={self.grid}"


def fingerprint(rule: str, subject: Subject) -> str:
    """A stable id of one rule on one subject (rule + identifying labels)."""
    return _digest(rule, subject.identity())


@lru_cache(maxsize=1 << 20)  # evaluated per rule and device on every pass
def _digest(rule: str, identity: str) -> str:
    return hashlib.sha256(f"{rule}|{identity}".encode()).hexdigest()[:24]


class Observation(NamedTuple):
    """A judgement of a condition at one instant: does it breach, does it clear."""

    ts: datetime
    value: float
    breach: bool
    clear: bool
    threshold: float | None = None


class AlertState(NamedTuple):
    """Where one rule stands on one subject; persisted so `for` windows survive restarts.

    A named tuple: the evaluator makes one per judged sample, so it must be cheap.
    """

    fingerprint: str
    rule: str
    device_id: str | None
    state: StateName = "inactive"
    active_since: datetime | None = None
    last_ts: datetime | None = None
    value: float | None = None
    alert_id: int | None = None


@dataclass(frozen=True)
class Transition:
    """An alert that starts firing or resolves, with what triggered it."""

    fingerprint: str
    rule: str
    subject: Subject
    to_state: Literal["firing", "resolved"]
    at: datetime
    started_at: datetime
    value: float | None
    threshold: float | None
    alert_id: int | None = None
    metric: str | None = None


@dataclass(frozen=True)
class AlertView:
    """An alert as people see it: in a message, on the phone page, from the API and the CLI."""

    alert_id: int
    rule: str
    condition: str
    severity: str
    state: str
    summary: str
    device_id: str | None
    device_name: str | None
    kind: str | None
    township: str | None
    village: str | None
    grid: str | None
    metric: str | None
    unit: str | None
    value: float | None
    threshold: float | None
    last_value: float | None
    started_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
