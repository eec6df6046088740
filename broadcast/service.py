"""The broadcast service layer: what the CLI, the API and alert rules call.

Every function takes an open connection and the acting principal, validates, authorizes,
and records; it never talks to MQTT. The delivery daemon (`broadcast.daemon`) picks new
broadcasts and cancellations up from the database (woken by NOTIFY on commit).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from broadcast import store
from broadcast.delivery import Happening, changes_for
from broadcast.model import (
    BroadcastDenied,
    BroadcastError,
    BroadcastId,
    BroadcastRequest,
    DeliveryState,
    NotFound,
    Scope,
)
from broadcast.scope import authorized_targets, scope_place
from ground.principal import Principal, Role

STATES = [str(state) for state in DeliveryState]


@dataclass(frozen=True)
class Report:
    """A delivery report: counts per state and the speakers that did not confirm."""

    broadcast_id: str
    priority: str
    scope_label: str
    status: str  # new, active, cancelled, expired
    created_at: datetime
    created_by: str
    expires_at: datetime
    speakers: int
    confirmed: int
    counts: dict[str, int]
    unconfirmed: list[dict[str, Any]]


@dataclass(frozen=True)
class Detail:
    """A broadcast as recorded, with its report."""

    broadcast: store.BroadcastRow
    report: Report


def new_broadcast_id() -> BroadcastId:
    """A fresh id, used as the play command's id on every speaker."""
    return BroadcastId(uuid.uuid4().hex)


def create_broadcast(conn: psycopg.Connection, request: BroadcastRequest, principal: Principal,
                     now: datetime, schedule_id: int | None = None) -> BroadcastId:
    """Validate, authorize and record a broadcast; the daemon sends it once this commits.

    Raises BroadcastError (bad scope: unknown speakers, empty) or BroadcastDenied.
    """
    targets = authorized_targets(principal, request.scope, store.load_speakers(conn),
                                 store.load_groups(conn))
    if request.expiry(now) <= now:
        raise BroadcastError("the broadcast would expire before it is sent")
    broadcast_id = new_broadcast_id()
    place = scope_place(request.scope, targets)
    store.insert_broadcast(conn, broadcast_id, request, principal, now, place, targets,
                           schedule_id)
    store.audit(conn, principal, "broadcast", now, broadcast_id=broadcast_id, schedule_id=schedule_id,
                detail={"priority": request.priority, "scope": request.scope.label(),
                        "speakers": len(targets),
                        "what": request.text if request.text is not None else request.audio_url})
    return broadcast_id


def _visible(conn: psycopg.Connection, broadcast_id: str, principal: Principal,
             for_update: bool = False) -> store.BroadcastRow:
    row = store.fetch_broadcast(conn, broadcast_id, for_update)
    if row is None or not principal.overlaps(row.place):
        raise NotFound(f"no broadcast {broadcast_id}")
    return row


def _status(status: str, expires_at: datetime, now: datetime) -> str:
    return "expired" if status != "cancelled" and expires_at <= now else status


def _report(row: dict[str, Any], unconfirmed: list[dict[str, Any]], now: datetime) -> Report:
    return Report(
        broadcast_id=row["broadcast_id"], priority=row["priority"],
        scope_label=row["scope_label"], status=_status(row["status"], row["expires_at"], now),
        created_at=row["created_at"], created_by=row["created_by"],
        expires_at=row["expires_at"], speakers=row["speakers"], confirmed=row["confirmed"],
        counts={state: row[state] for state in STATES if row[state]},
        unconfirmed=unconfirmed)


def _full_report(conn: psycopg.Connection, broadcast_id: str, now: datetime) -> Report:
    counts = store.report_counts(conn, broadcast_id)
    assert counts is not None
    return _report(counts, store.unconfirmed(conn, broadcast_id), now)


def delivery_report(conn: psycopg.Connection, broadcast_id: str, principal: Principal,
                    now: datetime) -> Report:
    """Counts per state and the speakers that did not confirm (NotFound if not visible)."""
    _visible(conn, broadcast_id, principal)
    return _full_report(conn, broadcast_id, now)


def show_broadcast(conn: psycopg.Connection, broadcast_id: str, principal: Principal,
                   now: datetime) -> Detail:
    """A broadcast as recorded, with its delivery report."""
    row = _visible(conn, broadcast_id, principal)
    return Detail(row, _full_report(conn, broadcast_id, now))


def list_broadcasts(conn: psycopg.Connection, principal: Principal, now: datetime,
                    limit: int = 50) -> list[Report]:
    """The newest broadcasts the principal may see, with counts (no speaker lists)."""
    return [_report(row, [], now) for row in store.list_reports(conn, principal.scope, limit)]


def cancel_broadcast(conn: psycopg.Connection, broadcast_id: str, principal: Principal,
                     now: datetime) -> Report:
    """Cancel a broadcast: open deliveries become cancelled; the daemon sends them `stop`."""
    row = _visible(conn, broadcast_id, principal, for_update=True)
    if not principal.may(Role.OPERATOR, row.place):
        raise BroadcastDenied(f"{principal.name} may not cancel broadcast {broadcast_id}")
    if row.status != "cancelled":
        changes = changes_for(store.deliveries(conn, broadcast_id, lock=True), Happening.CANCEL,
                              now)
        store.apply(conn, changes)
        store.mark_cancelled(conn, broadcast_id, principal.name, now)
        store.audit(conn, principal, "cancel", now, broadcast_id=broadcast_id,
                    detail={"deliveries_cancelled": len(changes)})
    return _full_report(conn, broadcast_id, now)


def set_group(conn: psycopg.Connection, name: str, device_ids: list[str], principal: Principal,
              now: datetime) -> None:
    """Define, redefine or (with no speakers) delete a named speaker group.

    The principal must be an operator over every speaker it held and will hold.
    """
    if principal.role < Role.OPERATOR:
        raise BroadcastDenied(f"{principal.name} is not an operator")
    speakers = store.load_speakers(conn)
    before = sorted(store.load_groups(conn).get(name, frozenset()))
    for members in (before, device_ids):
        if members:
            authorized_targets(principal, Scope.of_speakers(*members), speakers, {})
    store.replace_group(conn, name, device_ids)
    store.audit(conn, principal, "group", now, detail={"group": name, "speakers": device_ids})
