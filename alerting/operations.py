"""The alerts service: what people do with alerts (list, show with history, acknowledge,
silence, check rules). The CLI, the API and the phone page call these; authorization comes
from the principal, and refusals are the ground's kinds (NotFound, Denied, Invalid)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from alerting.files import load_rules
from alerting.model import AlertView
from alerting.rules import Rule, parse_rules
from alerting.store import VIEW_COLUMNS, VIEW_FROM
from devices.store import scope_conditions
from ground.errors import Denied, Invalid, NotFound
from ground.principal import Place, Principal, Role

MAX_SILENCE = timedelta(days=30)
SILENCE_LABELS = frozenset({"rule", "severity", "condition", "kind", "device_id", "township",
                            "village", "grid", "site", "gateway"})


class AlertNotFound(NotFound, LookupError):
    """No such alert or silence (or not within the principal's scope)."""


class AlertDenied(Denied, PermissionError):
    """The principal may not do this here."""


class SilenceError(Invalid, ValueError):
    """A silence that cannot be made: unbounded, too long, or matching unknown labels."""


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


# The CLI's names for the usual lists.
STATE_FILTERS: dict[str, AlertFilter] = {
    "open": AlertFilter(state="firing", acknowledged=False),
    "firing": AlertFilter(state="firing"),
    "resolved": AlertFilter(state="resolved"),
    "all": AlertFilter(),
}
_VIEW = sql.SQL("SELECT " + VIEW_COLUMNS + VIEW_FROM)  # noqa: S608 - constants


def list_alerts(conn: psycopg.Connection, principal: Principal,
                where: AlertFilter = STATE_FILTERS["firing"], limit: int = 100,
                offset: int = 0) -> list[AlertView]:
    """Alerts within the principal's scope matching the filter, newest first."""
    columns = ("state", "severity", "township", "village", "device_id", "rule", "kind")
    condition, params = scope_conditions(principal, "a", {c: getattr(where, c) for c in columns})
    if where.acknowledged is not None:
        condition = sql.SQL("{} AND (a.acknowledged_at IS NOT NULL) = %s").format(condition)
        params.append(where.acknowledged)
    query = sql.SQL("{} WHERE {} ORDER BY a.started_at DESC, a.id DESC LIMIT %s OFFSET %s").format(
        _VIEW, condition)
    with conn.cursor(row_factory=class_row(AlertView)) as cur:
        cur.execute(query, [*params, limit, offset])
        return cur.fetchall()


def find_alert(conn: psycopg.Connection, alert_id: int) -> AlertView | None:
    """One alert whatever its scope, for a caller that checks it (a signed link does)."""
    with conn.cursor(row_factory=class_row(AlertView)) as cur:
        cur.execute(sql.SQL("{} WHERE a.id = %s").format(_VIEW), (alert_id,))
        return cur.fetchone()


def get_alert(conn: psycopg.Connection, principal: Principal, alert_id: int) -> AlertView:
    """One alert, if the principal can see it (AlertNotFound otherwise)."""
    alert = find_alert(conn, alert_id)
    if alert is None or not principal.covers(Place(alert.township, alert.village)):
        raise AlertNotFound(f"no alert {alert_id}")
    return alert


def shown_alert(conn: psycopg.Connection, principal: Principal, alert_id: int) -> AlertView:
    """One alert for a viewer: AlertNotFound if there is none, AlertDenied if it is outside
    the principal's scope."""
    alert = find_alert(conn, alert_id)
    if alert is None:
        raise AlertNotFound(f"alert {alert_id} not found")
    if not principal.may(Role.VIEWER, Place(alert.township, alert.village)):
        raise AlertDenied("outside your scope")
    return alert


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


def acknowledge(
    conn: psycopg.Connection, principal: Principal, alert_id: int, comment: str, now: datetime
) -> AlertView:
    """Acknowledge an alert (stops its repeats and escalation); a second ack is recorded too."""
    alert = get_alert(conn, principal, alert_id)
    if not principal.may(Role.CADRE, Place(alert.township, alert.village)):
        raise AlertDenied(f"{principal.name} may not acknowledge alerts in "
                          f"{alert.township}/{alert.village}")
    with conn.transaction():
        conn.execute(
            "UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, %s),"
            " acknowledged_by = coalesce(acknowledged_by, %s),"
            " ack_comment = coalesce(ack_comment, %s) WHERE id = %s",
            (now, principal.name, comment, alert_id),
        )
        conn.execute("INSERT INTO alert_acks (alert_id, acknowledged_by, acknowledged_at, comment)"
                     " VALUES (%s, %s, %s, %s)", (alert_id, principal.name, now, comment))
        conn.execute("INSERT INTO alert_transitions (alert_id, at, from_state, to_state, detail)"
                     " VALUES (%s, %s, %s, 'acknowledged', %s)",
                     (alert_id, now, alert.state, f"{principal.name}: {comment}"))
    return get_alert(conn, principal, alert_id)


@dataclass(frozen=True)
class SilenceRecord:
    """A silence or maintenance window."""

    id: int
    kind: str
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


def create_silence(
    conn: psycopg.Connection, principal: Principal, matchers: dict[str, str],
    starts_at: datetime, ends_at: datetime, comment: str, now: datetime,
    kind: Literal["silence", "maintenance"] = "silence",
) -> SilenceRecord:
    """Mute what matches between two instants (an operator over the place it names)."""
    if not matchers:
        raise SilenceError("a silence needs at least one matcher")
    unknown = sorted(set(matchers) - SILENCE_LABELS)
    if unknown:
        raise SilenceError(f"unknown label {unknown[0]!r}; known: {', '.join(sorted(SILENCE_LABELS))}")
    if ends_at <= max(starts_at, now):
        raise SilenceError("a silence must end after it starts, and in the future")
    if ends_at - starts_at > MAX_SILENCE:
        raise SilenceError(f"a silence may last {MAX_SILENCE.days} days at most")
    place = Place(matchers.get("township"), matchers.get("village") if "township" in matchers else None)
    if not principal.may(Role.OPERATOR, place):
        raise AlertDenied(f"{principal.name} may not silence alerts there "
                          "(name a township and village within your scope)")
    row = conn.execute(
        "INSERT INTO silences (kind, matchers, starts_at, ends_at, created_by, comment)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (kind, Jsonb(matchers), starts_at, ends_at, principal.name, comment),
    ).fetchone()
    assert row is not None
    return SilenceRecord(int(row[0]), kind, dict(matchers), starts_at, ends_at, principal.name, comment)


def expire_silence(
    conn: psycopg.Connection, principal: Principal, silence_id: int, now: datetime
) -> None:
    """End a silence now."""
    row = conn.execute("SELECT matchers FROM silences WHERE id = %s", (silence_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"no silence {silence_id}")
    matchers = row[0]
    if not principal.may(Role.OPERATOR, Place(matchers.get("township"), matchers.get("village"))):
        raise AlertDenied(f"{principal.name} may not end this silence")
    conn.execute("UPDATE silences SET ends_at = greatest(starts_at + interval '1 microsecond', %s)"
                 " WHERE id = %s", (now, silence_id))


def silence_place(matchers: dict[str, str]) -> Place:
    """The place a silence's matchers name (the county if none)."""
    return Place(matchers.get("township"), matchers.get("village"))


def list_silences(conn: psycopg.Connection, principal: Principal,
                  now: datetime) -> list[SilenceRecord]:
    """Silences in force now or still to come that touch the principal's scope."""
    rows = conn.execute(
        "SELECT id, kind, matchers, starts_at, ends_at, created_by, comment FROM silences"
        " WHERE ends_at > %s ORDER BY starts_at", (now,),
    ).fetchall()
    silences = [SilenceRecord(r[0], r[1], dict(r[2]), r[3], r[4], r[5], r[6]) for r in rows]
    return [s for s in silences if principal.overlaps(silence_place(s.matchers))]


def check_rules(text: str, source: str) -> list[Rule]:
    """Validate a rules file's text (nothing is stored); RuleError names the rule and the field."""
    return parse_rules(text, source)


def active_rules(rules_files: list[str], presets: bool) -> list[Rule]:
    """The rules the alerting service runs: the presets (if on), then the files in order."""
    return load_rules(rules_files, presets)
