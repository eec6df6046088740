"""Reads of alerts for the API and the phone page, limited to the caller's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from ground.principal import Principal
from village.api.device_store import conditions
from village.api.phone_page import AlertView

_VIEW = sql.SQL(
    "SELECT a.id AS alert_id, a.severity, a.state, a.summary, a.device_id, d.name AS device_name,"
    " a.township, a.village, a.grid, a.metric, m.unit, a.value, a.threshold, a.last_value,"
    " a.started_at, a.resolved_at, a.acknowledged_at, a.acknowledged_by, a.ack_comment"
    " FROM alerts a LEFT JOIN devices d ON d.device_id = a.device_id"
    " LEFT JOIN metrics m ON m.kind = a.kind AND m.metric = a.metric"
)


def get_alert(conn: psycopg.Connection, alert_id: int) -> AlertView | None:
    """One alert as the page and the API show it (whatever its scope: callers check)."""
    with conn.cursor(row_factory=class_row(AlertView)) as cur:
        cur.execute(sql.SQL("{} WHERE a.id = %s").format(_VIEW), (alert_id,))
        return cur.fetchone()


@dataclass(frozen=True)
class AlertFilter:
    """What an alert list asks for (every field optional)."""

    state: str | None = None
    severity: str | None = None
    township: str | None = None
    village: str | None = None
    device_id: str | None = None
    rule: str | None = None
    acknowledged: bool | None = None
    kind: str | None = None


def list_alerts(conn: psycopg.Connection, principal: Principal, where: AlertFilter,
                limit: int, offset: int) -> list[AlertView]:
    """Alerts in the caller's scope, newest first."""
    columns = ("state", "severity", "township", "village", "device_id", "rule", "kind")
    condition, params = conditions(principal, "a", {c: getattr(where, c) for c in columns})
    if where.acknowledged is not None:
        condition = sql.SQL("{} AND (a.acknowledged_at IS NOT NULL) = %s").format(condition)
        params.append(where.acknowledged)
    query = sql.SQL("{} WHERE {} ORDER BY a.started_at DESC, a.id DESC LIMIT %s OFFSET %s").format(
        _VIEW, condition)
    with conn.cursor(row_factory=class_row(AlertView)) as cur:
        cur.execute(query, [*params, limit, offset])
        return cur.fetchall()


@dataclass(frozen=True)
class HistoryEntry:
    """One step of an alert's life: fired, acknowledged, escalated, resolved; and each message."""

    at: datetime
    what: str
    detail: dict[str, Any]


def alert_history(conn: psycopg.Connection, alert_id: int) -> list[HistoryEntry]:
    """An alert's transitions, acknowledgements and notifications, oldest first."""
    rows = conn.execute(
        "SELECT at, to_state, jsonb_build_object('from', from_state, 'value', value,"
        "  'detail', detail) FROM alert_transitions WHERE alert_id = %(id)s"
        " UNION ALL SELECT acknowledged_at, 'acknowledged', jsonb_build_object("
        "  'by', acknowledged_by, 'comment', comment) FROM alert_acks WHERE alert_id = %(id)s"
        " UNION ALL SELECT created_at, 'notification', jsonb_build_object('action', action,"
        "  'level', level, 'receiver', receiver, 'channel', channel, 'person_id', person_id,"
        "  'status', status, 'attempts', attempts, 'error', error)"
        " FROM notifications WHERE alert_ids @> ARRAY[%(id)s]::bigint[]"
        " ORDER BY 1",
        {"id": alert_id},
    ).fetchall()
    return [HistoryEntry(at, what, detail) for at, what, detail in rows]
