"""Scheduled broadcasts: one-off and recurring, kept in the database, fired by the daemon.

A schedule stores the request (with a relative expiry) and its creator; each firing creates
an ordinary broadcast with the creator's rights as they were recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from broadcast import store
from broadcast.model import (
    DEFAULT_EXPIRES_IN_S,
    BroadcastDenied,
    BroadcastError,
    BroadcastId,
    BroadcastRequest,
    NotFound,
    Speaker,
)
from broadcast.schedule import DEFAULT_TIMEZONE, check_timezone, next_cron_fire
from broadcast.scope import authorized_targets, resolve, scope_place
from broadcast.service import create_broadcast
from ground.principal import Place, Principal, Role


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A schedule as recorded."""

    schedule_id: int
    name: str
    created_at: datetime
    created_by: str
    creator_role: str
    creator_township: str | None
    creator_village: str | None
    request: dict[str, Any]
    cron: str | None
    run_at: datetime | None
    timezone: str
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    last_broadcast_id: str | None
    enabled: bool

    @property
    def creator(self) -> Principal:
        """The principal whose rights each firing uses."""
        return store.principal_of(self.created_by, self.creator_role, self.creator_township,
                                  self.creator_village)


_COLUMNS = ", ".join(ScheduleRow.__slots__)


def create_schedule(conn: psycopg.Connection, request: BroadcastRequest, principal: Principal,
                    now: datetime, *, name: str, cron: str | None = None,
                    at: datetime | None = None, timezone: str = DEFAULT_TIMEZONE) -> int:
    """Record a one-off (`at`) or recurring (`cron`, five fields, in `timezone`) broadcast."""
    if (cron is None) == (at is None):
        raise BroadcastError("give either cron or at")
    if request.expires_at is not None:
        raise BroadcastError("a scheduled broadcast takes expires_in_s, not expires_at")
    try:
        check_timezone(timezone)
        first = at if cron is None else next_cron_fire(cron, timezone, now)
    except ValueError as exc:  # a bad cron expression or time zone
        raise BroadcastError(str(exc)) from None
    authorized_targets(principal, request.scope, store.load_speakers(conn),
                       store.load_groups(conn))
    row = conn.execute(
        "INSERT INTO broadcast_schedules (name, created_at, created_by, creator_role,"
        " creator_township, creator_village, request, cron, run_at, timezone, next_fire_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING schedule_id",
        (name, now, principal.name, principal.role.label, principal.scope.township,
         principal.scope.village, Jsonb(request.model_dump(mode="json")), cron, at, timezone,
         first)).fetchone()
    assert row is not None
    schedule_id = int(row[0])
    store.audit(conn, principal, "schedule", now, schedule_id=schedule_id,
                detail={"name": name, "cron": cron, "at": at.isoformat() if at else None,
                        "timezone": timezone, "scope": request.scope.label()})
    store.wake_daemon(conn, f"schedule:{schedule_id}")
    return schedule_id


def _place_of(row: ScheduleRow, speakers: list[Speaker],
              groups: Mapping[str, frozenset[str]]) -> Place:
    request = BroadcastRequest.model_validate(row.request)
    try:
        targets = resolve(request.scope, speakers, groups)
    except BroadcastError:
        return row.creator.scope
    return scope_place(request.scope, targets)


def list_schedules(conn: psycopg.Connection, principal: Principal) -> list[ScheduleRow]:
    """The schedules whose place the principal's scope overlaps."""
    with conn.cursor(row_factory=class_row(ScheduleRow)) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM broadcast_schedules WHERE enabled"  # noqa: S608 - constant
            " ORDER BY schedule_id").fetchall()
    speakers, groups = store.load_speakers(conn), store.load_groups(conn)
    return [row for row in rows if principal.overlaps(_place_of(row, speakers, groups))]


def get_schedule(conn: psycopg.Connection, schedule_id: int,
                 lock: bool = False) -> ScheduleRow | None:
    """An enabled schedule as recorded (locked for update if asked), or None."""
    with conn.cursor(row_factory=class_row(ScheduleRow)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM broadcast_schedules WHERE schedule_id = %s AND enabled"  # noqa: S608 - constant
            + (" FOR UPDATE" if lock else ""), (schedule_id,)).fetchone()


def delete_schedule(conn: psycopg.Connection, schedule_id: int, principal: Principal,
                    now: datetime) -> None:
    """Disable a schedule (kept for the audit trail)."""
    row = get_schedule(conn, schedule_id, lock=True)
    place = None if row is None else _place_of(row, store.load_speakers(conn),
                                               store.load_groups(conn))
    if place is None or not principal.overlaps(place):
        raise NotFound(f"no schedule {schedule_id}")
    if not principal.may(Role.OPERATOR, place):
        raise BroadcastDenied(f"{principal.name} may not remove schedule {schedule_id}")
    conn.execute("UPDATE broadcast_schedules SET enabled = false WHERE schedule_id = %s",
                 (schedule_id,))
    store.audit(conn, principal, "unschedule", now, schedule_id=schedule_id)


def next_after(row: ScheduleRow, now: datetime) -> datetime | None:
    """When a schedule fires after firing at `now` (None for a one-off)."""
    return None if row.cron is None else next_cron_fire(row.cron, row.timezone, now)


def fire_due(conn: psycopg.Connection, now: datetime) -> list[BroadcastId]:
    """Create the broadcasts of every schedule that is due, and move each to its next time.

    Runs missed firings once (a recurring schedule's missed runs coalesce), unless the
    broadcast would already have expired had it gone out on time.
    """
    with conn.cursor(row_factory=class_row(ScheduleRow)) as cur:
        due = cur.execute(
            f"SELECT {_COLUMNS} FROM broadcast_schedules"  # noqa: S608 - constant
            " WHERE enabled AND next_fire_at <= %s ORDER BY next_fire_at"
            " FOR UPDATE SKIP LOCKED", (now,)).fetchall()
    fired: list[BroadcastId] = []
    for row in due:
        assert row.next_fire_at is not None
        outcome: dict[str, Any] = {"due": row.next_fire_at.isoformat()}
        broadcast_id = None
        try:
            request = BroadcastRequest.model_validate(row.request)
            lifetime = timedelta(seconds=request.expires_in_s or DEFAULT_EXPIRES_IN_S)
            if now - row.next_fire_at > lifetime:
                outcome["skipped"] = "missed: it would have expired by now"
            else:
                with conn.transaction():
                    broadcast_id = create_broadcast(conn, request, row.creator, now,
                                                    schedule_id=row.schedule_id)
                fired.append(broadcast_id)
        except (ValueError, BroadcastDenied) as exc:  # BroadcastError, a stored request gone bad
            outcome["failed"] = str(exc)
        conn.execute(
            "UPDATE broadcast_schedules SET next_fire_at = %s, last_fired_at = %s,"
            " last_broadcast_id = coalesce(%s, last_broadcast_id) WHERE schedule_id = %s",
            (next_after(row, now), now, broadcast_id, row.schedule_id))
        store.audit(conn, row.creator, "fire", now, broadcast_id=broadcast_id,
                    schedule_id=row.schedule_id, detail=outcome)
    return fired
