"""What people do with alerts: list, acknowledge, silence, check rules. The CLI and the
API call these; authorization comes from the principal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from alerting.rules import Rule, parse_rules
from ground.principal import Place, Principal, Role

MAX_SILENCE = timedelta(days=30)
SILENCE_LABELS = frozenset({"rule", "severity", "condition", "kind", "device_id", "township",
                            "village", "grid", "site", "gateway"})


class AlertNotFound(LookupError):
    """No such alert or silence (or not within the principal's scope)."""


class AlertDenied(PermissionError):
    """The principal may not do this here."""


class SilenceError(ValueError):
    """A silence that cannot be made: unbounded, too long, or matching unknown labels."""


@dataclass(frozen=True)
class AlertRecord:
    """An alert as people see it."""

    id: int
    rule: str
    severity: str
    state: str
    condition: str
    device_id: str | None
    kind: str | None
    township: str | None
    village: str | None
    grid: str | None
    metric: str | None
    summary: str
    value: float | None
    threshold: float | None
    started_at: datetime
    fired_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None


_SELECT = (
    "SELECT id, rule, severity, state, condition, device_id, kind, township, village, grid,"
    " metric, summary, value, threshold, started_at, fired_at, resolved_at, acknowledged_at,"
    " acknowledged_by, ack_comment FROM alerts"
)

StateFilter = Literal["open", "firing", "resolved", "all"]
_STATE_WHERE: dict[str, str] = {
    "open": "state = 'firing' AND acknowledged_at IS NULL",
    "firing": "state = 'firing'",
    "resolved": "state = 'resolved'",
    "all": "true",
}


def list_alerts(
    conn: psycopg.Connection, principal: Principal, state: StateFilter = "firing",
    limit: int = 100,
) -> list[AlertRecord]:
    """Alerts within the principal's scope, newest first."""
    scope = principal.scope
    with conn.cursor(row_factory=class_row(AlertRecord)) as cur:
        cur.execute(
            _SELECT + " WHERE " + _STATE_WHERE[state]
            + " AND (%(t)s::text IS NULL OR township = %(t)s)"
            " AND (%(v)s::text IS NULL OR village = %(v)s)"
            " ORDER BY started_at DESC, id DESC LIMIT %(limit)s",
            {"t": scope.township, "v": scope.village, "limit": limit},
        )
        return cur.fetchall()


def get_alert(conn: psycopg.Connection, principal: Principal, alert_id: int) -> AlertRecord:
    """One alert, if the principal can see it."""
    with conn.cursor(row_factory=class_row(AlertRecord)) as cur:
        cur.execute(_SELECT + " WHERE id = %s", (alert_id,))
        alert = cur.fetchone()
    if alert is None or not principal.covers(Place(alert.township, alert.village)):
        raise AlertNotFound(f"no alert {alert_id}")
    return alert


def acknowledge(
    conn: psycopg.Connection, principal: Principal, alert_id: int, comment: str, now: datetime
) -> AlertRecord:
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


def list_silences(conn: psycopg.Connection, now: datetime) -> list[SilenceRecord]:
    """Silences in force now or still to come."""
    rows = conn.execute(
        "SELECT id, kind, matchers, starts_at, ends_at, created_by, comment FROM silences"
        " WHERE ends_at > %s ORDER BY starts_at", (now,),
    ).fetchall()
    return [SilenceRecord(r[0], r[1], dict(r[2]), r[3], r[4], r[5], r[6]) for r in rows]


def check_rules(path: str) -> list[Rule]:
    """Validate a rules file; RuleError names the rule and the field."""
    return parse_rules(Path(path).read_text(encoding="utf-8"), path)
