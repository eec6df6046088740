"""Broadcasts: send, list, show with the per-speaker report, cancel; schedules.

Every route calls the broadcast service (broadcast.service, broadcast.schedules), which
authorizes (an operator broadcasts only within their scope) and records its own audit; its
refusals become problems through the API's one table (village.api.problems).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from broadcast import schedules, service, store
from broadcast.model import BroadcastRequest
from broadcast.schedule import DEFAULT_TIMEZONE
from village.api import audit
from village.api.deps import Caller, Conn, Limit
from village.api.problems import about

router = APIRouter(tags=["broadcasts"])


class BroadcastDetail(BaseModel):
    """A broadcast with its per-speaker delivery report."""

    broadcast: store.BroadcastRow
    report: service.Report


def _now() -> datetime:
    return datetime.now(UTC)


@router.post("/broadcasts", status_code=201, summary="Send a broadcast")
def send(body: BroadcastRequest, conn: Conn, caller: Caller) -> service.Report:
    """Record a broadcast for the delivery daemon (operator over every target speaker)."""
    now = _now()
    with about("scope"):
        broadcast_id = service.create_broadcast(conn, body, caller, now)
        report = service.delivery_report(conn, broadcast_id, caller, now)
    audit.record(conn, caller, "broadcast.send", f"broadcast:{broadcast_id}", None,
                 {"scope": body.scope.label(), "priority": body.priority})
    return report


@router.get("/broadcasts", summary="List broadcasts")
def list_(conn: Conn, caller: Caller, limit: Limit) -> list[service.Report]:
    """The newest broadcasts in the caller's scope, with counts per state."""
    return service.list_broadcasts(conn, caller, _now(), limit)


@router.get("/broadcasts/{broadcast_id}", summary="Show a broadcast")
def show(broadcast_id: str, conn: Conn, caller: Caller) -> BroadcastDetail:
    """A broadcast with its per-speaker report (who did not confirm)."""
    detail = service.show_broadcast(conn, broadcast_id, caller, _now())
    return BroadcastDetail(broadcast=detail.broadcast, report=detail.report)


@router.post("/broadcasts/{broadcast_id}/cancel", summary="Cancel a broadcast")
def cancel(broadcast_id: str, conn: Conn, caller: Caller) -> service.Report:
    """Cancel: open deliveries stop; speakers already playing are sent `stop`."""
    report = service.cancel_broadcast(conn, broadcast_id, caller, _now())
    audit.record(conn, caller, "broadcast.cancel", f"broadcast:{broadcast_id}")
    return report


class NewSchedule(BaseModel):
    """A one-off (`at`) or recurring (`cron`, five fields, in `timezone`) broadcast."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    request: BroadcastRequest
    cron: str | None = Field(None, max_length=200, examples=["0 7 * * *"])
    at: AwareDatetime | None = None
    timezone: str = Field(DEFAULT_TIMEZONE, max_length=64)


@router.post("/broadcast-schedules", status_code=201, summary="Schedule a broadcast")
def schedule(body: NewSchedule, conn: Conn, caller: Caller) -> schedules.ScheduleRow:
    """Record a schedule; each firing is a broadcast with the creator's rights."""
    schedule_id = schedules.create_schedule(
        conn, body.request, caller, _now(), name=body.name, cron=body.cron, at=body.at,
        timezone=body.timezone)
    audit.record(conn, caller, "schedule.create", f"schedule:{schedule_id}", None,
                 {"name": body.name, "cron": body.cron})
    created = schedules.get_schedule(conn, schedule_id)
    assert created is not None, "just inserted in this transaction"
    return created


@router.get("/broadcast-schedules", summary="List schedules")
def list_schedules(conn: Conn, caller: Caller) -> list[schedules.ScheduleRow]:
    """The enabled schedules in the caller's scope."""
    return schedules.list_schedules(conn, caller)


@router.delete("/broadcast-schedules/{schedule_id}", status_code=204, summary="Remove a schedule")
def unschedule(schedule_id: Annotated[int, Path(ge=1, le=2**63 - 1)], conn: Conn, caller: Caller) -> None:
    """Disable a schedule (kept for the audit trail)."""
    schedules.delete_schedule(conn, schedule_id, caller, _now())
    audit.record(conn, caller, "schedule.delete", f"schedule:{schedule_id}")
