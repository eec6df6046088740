"""Sending a command to devices: check, record, and hand to the delivery daemon (the service
the CLI, the API and alert actions call)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from broadcast import command_store
from broadcast.device_command import CommandError, Target, build_command, check_targets
from devices.models import Command
from ground.principal import Principal

DEFAULT_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=7)


@dataclass(frozen=True)
class CommandRequest:
    """What to send to which devices, and why (the audit keeps the reason)."""

    op: str
    why: str
    args: Mapping[str, Any] = field(default_factory=dict)
    device_ids: Sequence[str] | None = None  # or every device matching `filters`
    filters: Mapping[str, str] = field(default_factory=dict)
    expires_in: timedelta = DEFAULT_EXPIRY

    def selection(self) -> str:
        """How the devices were chosen, for people."""
        named = ", ".join(self.device_ids or ())
        chosen = " ".join(f"{name}={value}" for name, value in self.filters.items())
        return " ".join(part for part in (named, chosen) if part) or "every device"


def check_command(conn: psycopg.Connection, principal: Principal, request: CommandRequest,
                  now: datetime) -> tuple[Command, list[Target]]:
    """Check the request in full, recording nothing: the command (with a fresh id) and the
    devices it would go to (what a confirmation shows before sending).

    CommandError or CommandDenied say what is wrong.
    """
    if not request.why.strip():
        raise CommandError("say why the command is sent (it is kept with the command)")
    if request.device_ids is None and not request.filters:
        raise CommandError("name the devices, or select them (e.g. by village and kind)")
    if not timedelta(0) < request.expires_in <= MAX_EXPIRY:
        raise CommandError(f"expiry must be within {MAX_EXPIRY}")
    command = build_command(request.op, request.args, uuid.uuid4().hex,
                            now + request.expires_in)
    try:
        found, missing = command_store.targets(conn, request.device_ids, request.filters)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    check_targets(principal, request.op, found, missing)
    return command, found


def send_command(conn: psycopg.Connection, principal: Principal, request: CommandRequest,
                 now: datetime, alert_id: int | None = None) -> str:
    """Check the request in full, then record it for delivery; the command's id.

    CommandError or CommandDenied say what is wrong; nothing is recorded or sent then.
    """
    command, found = check_command(conn, principal, request, now)
    args = command.model_dump(mode="json", exclude={"id", "op", "expires_at"})
    with conn.transaction():
        command_store.insert_command(conn, command.id, principal, request.why.strip(),
                                     request.op, args, now + request.expires_in,
                                     request.selection(),
                                     [target.device_id for target in found], now, alert_id)
    return command.id
