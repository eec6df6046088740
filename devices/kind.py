"""What a device kind is: its metrics, its events, its commands and when it counts as silent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from devices.metrics import MetricSpec

# Events any kind may send.
COMMON_EVENT_TYPES = ("reboot",)


@dataclass(frozen=True)
class DeviceKind:
    """A kind of device from the contract's catalogue."""

    name: str
    label_zh: str
    label_en: str
    metrics: tuple[MetricSpec, ...]
    event_types: tuple[str, ...] = ()
    command_ops: tuple[str, ...] = ()
    stale_after_s: int = 600
    metric_index: dict[str, MetricSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {spec.name: spec for spec in self.metrics}
        if len(index) != len(self.metrics):
            raise ValueError(f"kind {self.name}: a metric is defined twice")
        object.__setattr__(self, "metric_index", index)

    def metric(self, name: str) -> MetricSpec | None:
        """The spec of a metric of this kind, or None if the kind does not define it."""
        return self.metric_index.get(name)

    @property
    def all_event_types(self) -> tuple[str, ...]:
        """The event types this kind is known to send, the common ones included."""
        return self.event_types + COMMON_EVENT_TYPES


def compose(*bundles: Iterable[MetricSpec]) -> tuple[MetricSpec, ...]:
    """Join capability bundles into one metric tuple."""
    return tuple(spec for bundle in bundles for spec in bundle)
