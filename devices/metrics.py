"""Metric specifications and the capability bundles that kinds compose."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its name (which carries the unit), unit, meaning and possible range."""

    name: str
    unit: str
    description: str
    minimum: float
    maximum: float
    boolean: bool = False

    def admits(self, value: float) -> bool:
        """Whether a value is physically possible for this metric (0 or 1 if boolean)."""
        if self.boolean:
            return value in (0.0, 1.0)
        return self.minimum <= value <= self.maximum


def boolean_metric(name: str, description: str) -> MetricSpec:
    """A true/false metric, stored as 1/0."""
    return MetricSpec(name, "bool", description, 0, 1, boolean=True)


BATTERY = (MetricSpec("battery_v", "V", "battery voltage", 0, 30),)
RADIO = (MetricSpec("rssi_dbm", "dBm", "radio signal strength", -150, 0),)


def temperature(description: str, minimum: float, maximum: float) -> tuple[MetricSpec, ...]:
    """A temperature capability with the range the device can physically see."""
    return (MetricSpec("temperature_c", "°C", description, minimum, maximum),)
