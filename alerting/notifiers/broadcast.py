"""Loudspeaker broadcast as an alert action: asks the broadcast service to play a notice."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from alerting.notifiers.base import Message, NotifyError, Recipient


class BroadcastConfig(BaseModel):
    """Where the notice plays (the alert's village or township) and at what priority."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["village", "township"] = "village"
    priority: Literal["normal", "alert", "emergency"] = "emergency"
    text: str | None = Field(None, description="what to say; default: the alert's title")


class BroadcastStarter(Protocol):
    """The broadcast service's entry point, as alerting needs it."""

    def __call__(self, township: str | None, village: str | None, text: str,
                 priority: str, requested_by: str) -> str:
        """Start a broadcast to a place; returns its id."""


class BroadcastNotifier:
    """Starts a broadcast to the place of the alert (the first alert of a group)."""

    channel = "broadcast"

    def __init__(self, config: BroadcastConfig, starter: BroadcastStarter | None) -> None:
        self.config, self.starter = config, starter

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Ask the broadcast service to play the notice; only firing alerts speak."""
        if message.action not in ("firing", "escalation"):
            return
        if self.starter is None:
            raise NotifyError("broadcast: no broadcast service is wired in", retryable=False)
        township = message.place.get("township")
        village = message.place.get("village") if self.config.scope == "village" else None
        try:
            self.starter(township, village, self.config.text or message.title,
                         self.config.priority, "alerting")
        except (ValueError, LookupError, PermissionError) as exc:
            raise NotifyError(f"broadcast: refused ({type(exc).__name__})", retryable=False) from None
        except OSError as exc:
            raise NotifyError(f"broadcast: {type(exc).__name__}", retryable=True) from None
