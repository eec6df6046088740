"""WeCom (企业微信) group robot."""

from __future__ import annotations

from alerting.notifiers.base import Message, Recipient
from alerting.notifiers.robots import Robot


class WecomNotifier(Robot):
    """WeCom group robot: a text message, mentioning the recipient's WeCom id or phone."""

    channel = "wecom"
    retryable_codes = frozenset({-1, 45009})  # busy, rate limited

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Post the text to the robot."""
        text: dict[str, object] = {"content": self._text(message)}
        if recipient and self.config.mention:
            text["mentioned_list"] = [recipient.im["wecom"]] if "wecom" in recipient.im else []
            text["mentioned_mobile_list"] = [recipient.phone] if recipient.phone else []
        self._post(self.config.url.get_secret_value(), {"msgtype": "text", "text": text})
