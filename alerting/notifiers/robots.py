"""What the chat robots share (WeCom, DingTalk, Feishu): their config and a base class."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alerting.notifiers.base import Message, check_robot_reply, post


class RobotConfig(BaseModel):
    """A group robot's webhook URL (its token inside) and, for signed robots, the secret."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    secret: SecretStr | None = None
    mention: bool = Field(True, description="@ the recipient by phone or IM id")


class Robot:
    """A group robot posting text to its webhook."""

    channel = "robot"
    code_field = "errcode"
    retryable_codes: frozenset[int] = frozenset()

    def __init__(self, config: RobotConfig, timeout_s: float,
                 clock: Callable[[], float]) -> None:
        self.config, self.timeout_s, self.clock = config, timeout_s, clock

    def _text(self, message: Message) -> str:
        return f"{message.title}\n{message.text}"

    def _post(self, url: str, body: Mapping[str, object]) -> None:
        """POST the body; a reply carrying a non-zero error code is a failure too."""
        check_robot_reply(url, post(url, self.timeout_s, json=body), self.code_field,
                          self.retryable_codes)
