"""Generic webhook: the alerts as JSON, POSTed to a URL."""

from __future__ import annotations

from dataclasses import asdict

from pydantic import BaseModel, ConfigDict, Field

from alerting.notifiers.base import Message, Recipient, post


class WebhookConfig(BaseModel):
    """A URL that receives JSON, with optional extra headers (an auth token, say)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)


class WebhookNotifier:
    """POSTs `{title, text, action, severity, alerts, recipient}` as JSON."""

    channel = "webhook"

    def __init__(self, config: WebhookConfig, timeout_s: float) -> None:
        self.config, self.timeout_s = config, timeout_s

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """POST the message as JSON."""
        body = {
            "title": message.title, "text": message.text, "action": message.action,
            "severity": message.severity, "language": message.language,
            "place": message.place, "alerts": list(message.alerts),
            "recipient": asdict(recipient) if recipient else None,
        }
        post(self.config.url, self.timeout_s, json=body, headers=self.config.headers)
