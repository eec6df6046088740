"""Chat robots: WeCom (企业微信), DingTalk (钉钉, signed) and Feishu (飞书, signed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import quote_plus

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alerting.notifiers.base import Message, Recipient, check_robot_reply, post


class RobotConfig(BaseModel):
    """A group robot's webhook URL (its token inside) and, for signed robots, the secret."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    secret: SecretStr | None = None
    mention: bool = Field(True, description="@ the recipient by phone or IM id")


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign`: base64 HMAC-SHA256 of "timestamp\\nsecret", URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return quote_plus(base64.b64encode(digest.digest()).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's `sign`: base64 HMAC-SHA256 keyed by "timestamp\\nsecret" of nothing."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


class _Robot:
    channel = "robot"
    code_field = "errcode"
    retryable_codes: frozenset[int] = frozenset()

    def __init__(self, config: RobotConfig, timeout_s: float,
                 clock: Callable[[], float]) -> None:
        self.config, self.timeout_s, self.clock = config, timeout_s, clock

    def _text(self, message: Message) -> str:
        return f"{message.title}\n{message.text}"


class WecomNotifier(_Robot):
    """WeCom group robot: a text message, mentioning the recipient's WeCom id or phone."""

    channel = "wecom"
    retryable_codes = frozenset({-1, 45009})  # busy, rate limited

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Post the text to the robot."""
        text: dict[str, object] = {"content": self._text(message)}
        if recipient and self.config.mention:
            text["mentioned_list"] = [recipient.im["wecom"]] if "wecom" in recipient.im else []
            text["mentioned_mobile_list"] = [recipient.phone] if recipient.phone else []
        url = self.config.url.get_secret_value()
        reply = post(url, self.timeout_s, json={"msgtype": "text", "text": text})
        check_robot_reply(url, reply, self.code_field, self.retryable_codes)


class DingtalkNotifier(_Robot):
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
        reply = post(url, self.timeout_s, json=body)
        check_robot_reply(url, reply, self.code_field, self.retryable_codes)


class FeishuNotifier(_Robot):
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
        url = self.config.url.get_secret_value()
        reply = post(url, self.timeout_s, json=body)
        check_robot_reply(url, reply, self.code_field, self.retryable_codes)
