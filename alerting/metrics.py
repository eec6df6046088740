"""The alerting service's Prometheus metrics: its passes and every notification attempt."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alerting.notifiers.base import Message, Notifier, NotifyError, Recipient

_PASS_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_SEND_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class AlertingMetrics:
    """Counters and histograms of one alerting process, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        on = self.registry
        self.passes = Counter("village_alerting_passes",
                              "evaluation and dispatch passes, by pass and outcome (ok, failed)",
                              ["pass", "outcome"], registry=on)
        self.pass_seconds = Histogram("village_alerting_pass_seconds", "how long a pass took",
                                      ["pass"], buckets=_PASS_BUCKETS, registry=on)
        self.stream_behind = Gauge(
            "village_alerting_stream_behind_seconds",
            "how long ago the newest reading the streaming pass has judged was stored: near"
            " the pass interval when caught up, minutes while it works through a backlog",
            registry=on)
        self.notifications = Counter(
            "village_alerting_notifications",
            "notification attempts by channel and outcome (sent, retryable, permanent)",
            ["channel", "outcome"], registry=on)
        self.notify_seconds = Histogram("village_alerting_notify_seconds",
                                        "how long one attempt to send took, by channel",
                                        ["channel"], buckets=_SEND_BUCKETS, registry=on)

    def timed(self, name: str, work: Callable[[], object]) -> Callable[[], None]:
        """`work` counted and timed as pass `name` (an exception is counted, then raised)."""
        def job() -> None:
            started = time.perf_counter()
            outcome = "failed"
            try:
                work()
                outcome = "ok"
            finally:
                self.passes.labels(name, outcome).inc()
                self.pass_seconds.labels(name).observe(time.perf_counter() - started)
        return job

    def instrument(self, notifiers: Mapping[str, Notifier]) -> dict[str, Notifier]:
        """The same receivers, each attempt counted by outcome and timed."""
        return {name: _Counted(notifier, self) for name, notifier in notifiers.items()}


class _Counted:
    """A notifier whose every attempt is counted and timed (a Notifier itself)."""

    def __init__(self, inner: Notifier, metrics: AlertingMetrics) -> None:
        self.channel = inner.channel
        self._inner = inner
        self._metrics = metrics

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Send through the wrapped notifier."""
        started = time.perf_counter()
        outcome = "permanent"
        try:
            self._inner.send(message, recipient)
            outcome = "sent"
        except NotifyError as exc:
            outcome = "retryable" if exc.retryable else "permanent"
            raise
        finally:
            self._metrics.notifications.labels(self.channel, outcome).inc()
            self._metrics.notify_seconds.labels(self.channel).observe(
                time.perf_counter() - started)
