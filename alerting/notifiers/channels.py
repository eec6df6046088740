"""Builds each configured receiver's notifier from its type (one table, no if-chains)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from alerting.notifiers.base import Notifier
from alerting.notifiers.broadcast import BroadcastNotifier, BroadcastStarter
from alerting.notifiers.console import ConsoleNotifier
from alerting.notifiers.dingtalk import DingtalkNotifier
from alerting.notifiers.email import EmailNotifier
from alerting.notifiers.feishu import FeishuNotifier
from alerting.notifiers.sms import SmsNotifier
from alerting.notifiers.webhook import WebhookNotifier
from alerting.notifiers.wecom import WecomNotifier
from alerting.routing import Routing


class _Context:
    def __init__(self, timeout_s: float, broadcast: BroadcastStarter | None,
                 console: TextIO | None) -> None:
        self.timeout_s, self.broadcast, self.console = timeout_s, broadcast, console


BUILDERS: dict[str, Callable[[Any, _Context], Notifier]] = {
    "webhook": lambda c, x: WebhookNotifier(c, x.timeout_s),
    "sms": lambda c, x: SmsNotifier(c, x.timeout_s),
    "wecom": lambda c, x: WecomNotifier(c, x.timeout_s, time.time),
    "dingtalk": lambda c, x: DingtalkNotifier(c, x.timeout_s, time.time),
    "feishu": lambda c, x: FeishuNotifier(c, x.timeout_s, time.time),
    "email": lambda c, x: EmailNotifier(c, x.timeout_s),
    "broadcast": lambda c, x: BroadcastNotifier(c, x.broadcast),
    "console": lambda c, x: ConsoleNotifier(x.console),
}


def build_notifiers(
    routing: Routing, timeout_s: float, broadcast: BroadcastStarter | None = None,
    console: TextIO | None = None,
) -> dict[str, Notifier]:
    """A notifier per configured receiver, by receiver name."""
    context = _Context(timeout_s, broadcast, console)
    return {name: BUILDERS[receiver.type](receiver.config(), context)
            for name, receiver in routing.receivers.items()}
