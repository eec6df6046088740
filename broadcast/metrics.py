"""The broadcast daemon's Prometheus metrics: delivery changes of broadcasts and of device
commands, what it holds, its passes."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BroadcastMetrics:
    """Counters and histograms of one delivery daemon, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        on = self.registry
        self.deliveries = Counter(
            "village_broadcast_delivery_changes",
            "delivery state changes committed, by the state entered (sent, accepted, done, ...)",
            ["state"], registry=on)
        self.command_deliveries = Counter(
            "village_command_delivery_changes",
            "device command delivery state changes committed, by the state entered"
            " (sent, accepted, done, rejected, offline, expired, ...)",
            ["state"], registry=on)
        self.messages = Counter("village_broadcast_messages_handled",
                                "acks and statuses applied and acknowledged", registry=on)
        self.held = Gauge("village_broadcast_held_messages",
                          "acks, statuses and wake-ups waiting for the worker", registry=on)
        self.pass_seconds = Histogram("village_broadcast_pass_seconds",
                                      "how long a pass took, by pass (messages, cycle)",
                                      ["pass"], buckets=_PASS_BUCKETS, registry=on)

    def watch(self, held: Callable[[], int]) -> None:
        """Read the worker's inbox size at each scrape."""
        self.held.set_function(held)

    def committed(self, broadcasts: Tally[str], commands: Tally[str]) -> None:
        """Count the state changes of a committed transaction, by the state entered."""
        for counter, entered in ((self.deliveries, broadcasts),
                                 (self.command_deliveries, commands)):
            for state, count in entered.items():
                counter.labels(state).inc(count)
