"""What every channel shares: the message, the recipient, failures and retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx


@dataclass(frozen=True)
class Recipient:
    """A person a message is addressed to (None for a group channel such as a chat robot)."""

    person_id: str
    name: str
    phone: str | None = None
    email: str | None = None
    im: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """A rendered notification: a title, the text, and the structured alerts."""

    title: str
    text: str
    action: str
    severity: str
    language: str
    alerts: tuple[dict[str, Any], ...]
    place: dict[str, str] = field(default_factory=dict)


class NotifyError(Exception):
    """A failed send; `retryable` says whether trying again may help. Never holds a secret."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    """A channel that delivers a message, raising NotifyError on failure."""

    channel: str

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Deliver the message (to the recipient, where the channel addresses people)."""


def redact(url: str) -> str:
    """A URL reduced to scheme, host and port: tokens live in paths and queries."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


# 408 timeout, 425 too early, 429 rate-limited and 5xx are worth another try.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def post(url: str, timeout_s: float, **kwargs: Any) -> httpx.Response:
    """POST, turning every failure into a NotifyError that names only the host."""
    try:
        response = httpx.post(url, timeout=timeout_s, **kwargs)
    except httpx.TimeoutException:
        raise NotifyError(f"{redact(url)}: timed out", retryable=True) from None
    except httpx.HTTPError as exc:
        raise NotifyError(f"{redact(url)}: {type(exc).__name__}", retryable=True) from None
    if response.status_code >= 300:
        raise NotifyError(f"{redact(url)}: HTTP {response.status_code}",
                          retryable=response.status_code in RETRYABLE_STATUS)
    return response


def check_robot_reply(url: str, response: httpx.Response, code_field: str,
                      retryable_codes: frozenset[int]) -> None:
    """Chat robots answer 200 with an error code in the body; non-zero is a failure."""
    try:
        body = response.json()
    except ValueError:
        raise NotifyError(f"{redact(url)}: reply is not JSON", retryable=True) from None
    code = body.get(code_field, 0) if isinstance(body, dict) else 0
    if code:
        raise NotifyError(f"{redact(url)}: robot refused, code {code}",
                          retryable=code in retryable_codes)


@dataclass(frozen=True)
class Delivery:
    """How a send ended: delivered or not, after how many attempts, and why not."""

    ok: bool
    attempts: int
    error: str | None = None


def send_with_retry(
    notifier: Notifier, message: Message, recipient: Recipient | None,
    attempts: int, backoff_s: float, sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send, retrying retryable failures with doubling backoff, at most `attempts` times."""
    error = "not sent"
    for attempt in range(1, attempts + 1):
        try:
            notifier.send(message, recipient)
            return Delivery(True, attempt)
        except NotifyError as exc:
            error = str(exc)
            if not exc.retryable:
                return Delivery(False, attempt, f"permanent: {error}")
        except Exception as exc:  # a fault of ours (a template, say): recorded, never retried
            return Delivery(False, attempt, f"permanent: {notifier.channel}: {type(exc).__name__}")
        if attempt < attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(False, attempts, f"gave up: {error}")
