"""Loudspeaker broadcast as an alert action: asks the broadcast service to play a notice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, Protocol

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from alerting.notifiers.base import Message, NotifyError, Recipient
from broadcast.model import BroadcastRequest, Scope
from broadcast.service import create_broadcast
from ground.principal import Place, Principal, Role


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
        except OSError as exc:  # psycopg's connection errors are OSErrors too
            raise NotifyError(f"broadcast: {type(exc).__name__}", retryable=True) from None


class ServiceStarter:
    """A BroadcastStarter over the broadcast service (`broadcast.service.create_broadcast`)."""

    def __init__(self, database_url: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.database_url, self.clock = database_url, clock

    def __call__(self, township: str | None, village: str | None, text: str,
                 priority: str, requested_by: str) -> str:
        """Record the broadcast; the broadcast daemon plays it once this commits."""


        if township is None:
            raise LookupError("an alert with no township cannot choose speakers")
        scope = Scope.of_village(township, village) if village else Scope.of_township(township)
        request = BroadcastRequest(scope=scope, text=text, priority=priority)
        principal = Principal(f"rule:{requested_by}", Role.OPERATOR, Place(township))
        try:
            with psycopg.connect(self.database_url) as conn, conn.transaction():
                return str(create_broadcast(conn, request, principal, self.clock()))
        except psycopg.OperationalError as exc:  # the database is away: worth another try
            raise ConnectionError(type(exc).__name__) from None
