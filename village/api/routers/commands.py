"""Device commands: send one op to named devices or a selection, and follow each device.

Routes call the command service (broadcast.command_service), which checks the op against
the contract and each device's kind, and the caller's role and scope against each device.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from broadcast import command_store
from broadcast.command_reports import visible_command
from broadcast.command_service import DEFAULT_EXPIRY, MAX_EXPIRY, CommandRequest, send_command
from village.api import audit
from village.api.deps import Caller, Conn
from village.api.problems import Problem

router = APIRouter(prefix="/devices/commands", tags=["devices"])


class NewCommand(BaseModel):
    """An op with its arguments, for named devices or every device matching the filters."""

    model_config = ConfigDict(extra="forbid")

    op: str = Field(examples=["set_valve"])
    args: dict[str, Any] = Field(default_factory=dict, examples=[{"open": False}])
    why: str = Field(min_length=1, max_length=500)
    device_ids: list[str] | None = Field(None, max_length=200_000)
    kind: str | None = None
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    site: str | None = None
    expires_in_s: int = Field(int(DEFAULT_EXPIRY.total_seconds()), gt=0,
                              le=int(MAX_EXPIRY.total_seconds()))


class CommandReport(BaseModel):
    """A command and where each device is with it."""

    command: command_store.CommandRow
    counts: dict[str, int]
    devices: list[dict[str, Any]]


def _report(conn: Conn, command_id: str) -> CommandReport:
    row = command_store.fetch_command(conn, command_id)
    if row is None:
        raise Problem(404, f"no command {command_id!r}")
    report = command_store.report(conn, command_id)
    return CommandReport(command=row, counts=report["counts"], devices=report["devices"])


@router.post("", status_code=201, summary="Send a command to devices")
def send(body: NewCommand, conn: Conn, caller: Caller) -> CommandReport:
    """Check, record and hand to the delivery daemon; nothing is sent if any check fails."""
    filters = {name: value for name in ("kind", "township", "village", "grid", "site")
               if (value := getattr(body, name)) is not None}
    request = CommandRequest(op=body.op, why=body.why, args=body.args,
                             device_ids=body.device_ids, filters=filters,
                             expires_in=timedelta(seconds=body.expires_in_s))
    command_id = send_command(conn, caller, request, datetime.now(UTC))
    audit.record(conn, caller, "device.command", f"command:{command_id}", None,
                 {"op": body.op, "args": body.args, "why": body.why,
                  "selection": request.selection()})
    return _report(conn, command_id)


@router.get("/{command_id}", summary="Follow a device command")
def show(command_id: str, conn: Conn, caller: Caller) -> CommandReport:
    """The command and each device's state and reason (for callers who see every device)."""
    visible_command(conn, caller, command_id)
    return _report(conn, command_id)
