"""DingTalk (钉钉) group robot, signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

from alerting.notifiers.base import Message, Recipient
from alerting.notifiers.robots import Robot


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign`: base64 HMAC-SHA256 of "timestamp\\nsecret", URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return quote_plus(base64.b64encode(digest.digest()).decode())


class DingtalkNotifier(Robot):
    """DingTalk robot, signed with its secret when one is set."""

    channel = "dingtalk"
    retryable_codes = frozenset({-1, 130101})  # busy, sending too fast

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Post the text to the robot with `timestamp` and `sign` in the query."""
        url = self.config.url.get_secret_value()
        if self.config.secret is not None:
            stamp = int(self.clock() * 1000)
            sign = dingtalk_sign(self.config.secret.get_secret_value(), stamp)
            url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={sign}"
        at: dict[str, object] = {}
        if recipient and self.config.mention and recipient.phone:
            at["atMobiles"] = [recipient.phone]
        body = {"msgtype": "text", "text": {"content": self._text(message)}, "at": at}
        self._post(url, body)
