"""Faults: which a kind can have, and when one is active on a device (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Faults the adapter acts out (the device leaves the network), valid for every kind.
NETWORK_FAULTS = ("offline",)

# Faults each kind's model acts out. `silence`: connected, but publishes nothing.
MODEL_FAULTS: dict[str, tuple[str, ...]] = {
    "water_meter": ("leak", "burst", "reverse_flow", "meter_swap", "flat_battery", "silence"),
    "water_quality": ("contamination", "fouling", "calibration_drift", "silence"),
    "barn": ("ventilation_failure", "heat_wave", "fever", "silence"),
    "camera": ("storage_full", "tamper", "silence"),
    "speaker": ("silence",),
    "gateway": ("silence",),
}


def faults_of(kind: str) -> tuple[str, ...]:
    """Every fault a device of this kind can be given."""
    return MODEL_FAULTS.get(kind, ()) + NETWORK_FAULTS


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """A fault from `start` until `end` (open-ended when None).

    `ramp_s`: how long a growing fault (contamination, a ventilation failure) takes to
    reach its full size; None for the kind's realistic default (tests pass 0).
    """

    name: str
    start: datetime
    end: datetime | None = None
    ramp_s: float | None = None

    def covers(self, at: datetime) -> bool:
        """Whether the fault is active at `at`."""
        return self.start <= at and (self.end is None or at < self.end)


@dataclass
class Faults:
    """The fault windows of one device."""

    windows: list[FaultWindow] = field(default_factory=list)

    def add(self, window: FaultWindow) -> None:
        """Give the device a fault for a window of time."""
        self.windows.append(window)

    def clear(self, name: str, at: datetime) -> None:
        """End every open window of a fault at `at`."""
        self.windows = [FaultWindow(w.name, w.start, at, w.ramp_s)
                        if w.name == name and w.covers(at) else w for w in self.windows]

    def active(self, name: str, at: datetime) -> FaultWindow | None:
        """The window of `name` that covers `at`, if any."""
        for window in self.windows:
            if window.name == name and window.covers(at):
                return window
        return None

    def quiet(self, at: datetime) -> bool:
        """Whether the device publishes nothing at `at`: silenced, or off the network."""
        return any(self.active(name, at) for name in ("silence", *NETWORK_FAULTS))

    def progress(self, name: str, at: datetime, default_ramp_h: float) -> float | None:
        """How far a growing fault has come at `at`, in ramp times (None when inactive).

        Physics multiplies its time constants by this: 1.0 is one ramp time in.
        """
        window = self.active(name, at)
        if window is None:
            return None
        ramp_h = default_ramp_h if window.ramp_s is None else window.ramp_s / 3600
        elapsed_h = (at - window.start).total_seconds() / 3600
        return float("inf") if ramp_h <= 0 else elapsed_h / ramp_h

    def hours_into(self, name: str, at: datetime) -> float | None:
        """How long `name` has been active at `at`, in hours (None when inactive)."""
        window = self.active(name, at)
        return None if window is None else (at - window.start).total_seconds() / 3600
