"""SMS through an HTTP gateway, the request shaped by a template per provider."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alerting.notifiers.base import Message, NotifyError, Recipient, post

SMS_LIMIT = 300  # characters; gateways split or refuse longer texts


class SmsConfig(BaseModel):
    """An SMS gateway: where, how its request looks, and its key."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://")
    provider: Literal["json", "form", "template"] = "json"
    api_key: SecretStr | None = None
    sign_name: str = Field("", description="the registered SMS signature (签名), if any")
    template: str | None = Field(
        None, description="provider `template`: a JSON body with {phone}, {text}, {sign}"
    )


def _json_body(config: SmsConfig, phone: str, text: str) -> dict[str, Any]:
    return {"json": {"to": phone, "text": text, "sign": config.sign_name}}


def _form_body(config: SmsConfig, phone: str, text: str) -> dict[str, Any]:
    return {"data": {"mobile": phone, "content": text, "sign": config.sign_name}}


def _template_body(config: SmsConfig, phone: str, text: str) -> dict[str, Any]:
    if not config.template:
        raise NotifyError("sms: provider `template` needs a template", retryable=False)
    quoted = {k: json.dumps(v)[1:-1] for k, v in
              {"phone": phone, "text": text, "sign": config.sign_name}.items()}
    filled = config.template
    for key, value in quoted.items():
        filled = filled.replace("{" + key + "}", value)
    return {"content": filled.encode(), "headers": {"Content-Type": "application/json"}}


PROVIDERS: dict[str, Callable[[SmsConfig, str, str], dict[str, Any]]] = {
    "json": _json_body, "form": _form_body, "template": _template_body,
}


class SmsNotifier:
    """Texts the recipient's phone: the title and the first part of the text."""

    channel = "sms"

    def __init__(self, config: SmsConfig, timeout_s: float) -> None:
        self.config, self.timeout_s = config, timeout_s

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Send one SMS to the recipient's phone."""
        if recipient is None or not recipient.phone:
            raise NotifyError("sms: the recipient has no phone number", retryable=False)
        text = f"{message.title}\n{message.text}"[:SMS_LIMIT]
        request = PROVIDERS[self.config.provider](self.config, recipient.phone, text)
        headers = dict(request.pop("headers", {}))
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
        post(self.config.url, self.timeout_s, headers=headers, **request)
