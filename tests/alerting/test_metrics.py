"""The alerting metrics: each notification attempt by channel and outcome, each pass timed."""

from __future__ import annotations

import pytest

from alerting.metrics import AlertingMetrics
from alerting.notifiers.base import Message, NotifyError, Recipient, send_with_retry

MESSAGE = Message("t", "text", "firing", "major", "zh", ())


class Flaky:
    """A channel failing the first `failures` attempts, retryably or not (a seam we own)."""

    channel = "sms"

    def __init__(self, failures: int, retryable: bool) -> None:
        self.failures = failures
        self.retryable = retryable

    def send(self, message: Message, recipient: Recipient | None) -> None:
        if self.failures:
            self.failures -= 1
            raise NotifyError("gateway said no", self.retryable)


def value(metrics: AlertingMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return found or 0.0


def test_each_attempt_is_counted_by_channel_and_outcome() -> None:
    metrics = AlertingMetrics()
    notifiers = metrics.instrument({"cadres": Flaky(2, retryable=True),
                                    "robot": Flaky(1, retryable=False)})
    assert send_with_retry(notifiers["cadres"], MESSAGE, None, 3, 0, lambda s: None).ok
    assert not send_with_retry(notifiers["robot"], MESSAGE, None, 3, 0, lambda s: None).ok
    total = "village_alerting_notifications_total"
    assert value(metrics, total, channel="sms", outcome="retryable") == 2
    assert value(metrics, total, channel="sms", outcome="sent") == 1
    assert value(metrics, total, channel="sms", outcome="permanent") == 1
    assert value(metrics, "village_alerting_notify_seconds_count", channel="sms") == 4
    assert notifiers["cadres"].channel == "sms"


def test_passes_are_counted_and_timed_failed_ones_too() -> None:
    metrics = AlertingMetrics()
    metrics.timed("tick", lambda: None)()

    def broken() -> None:
        raise RuntimeError("bad pass")

    with pytest.raises(RuntimeError):
        metrics.timed("tick", broken)()
    assert value(metrics, "village_alerting_passes_total", outcome="ok", **{"pass": "tick"}) == 1
    assert value(metrics, "village_alerting_passes_total", outcome="failed",
                 **{"pass": "tick"}) == 1
    assert value(metrics, "village_alerting_pass_seconds_count", **{"pass": "tick"}) == 2
