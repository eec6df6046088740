"""Feishu (飞书) group robot, signed."""

from __future__ import annotations

import base64
import hashlib
import hmac

from alerting.notifiers.base import Message, Recipient
from alerting.notifiers.robots import Robot


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's `sign`: base64 HMAC-SHA256 keyed by "timestamp\\nsecret" of nothing."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


class FeishuNotifier(Robot):
    """Feishu robot, signed with its secret when one is set."""

    channel = "feishu"
    code_field = "code"
    retryable_codes = frozenset({9499, 11232})  # busy, rate limited

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Post the text with `timestamp` and `sign` in the body."""
        text = self._text(message)
        if recipient and self.config.mention and "feishu" in recipient.im:
            text += f'\n<at user_id="{recipient.im["feishu"]}">{recipient.name}</at>'
        body: dict[str, object] = {"msg_type": "text", "content": {"text": text}}
        if self.config.secret is not None:
            stamp = int(self.clock())
            body |= {"timestamp": str(stamp),
                     "sign": feishu_sign(self.config.secret.get_secret_value(), stamp)}
        self._post(self.config.url.get_secret_value(), body)
