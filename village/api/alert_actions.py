"""Alert actions the API takes: acknowledge (authorized: a cadre over the alert's place).

Written against the alerting schema (docs of migration 0003) until the alerting service
exposes its own acknowledge function; then this delegates to it.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from village.api import audit
from village.api.problems import Problem, forbidden, not_found
from village.principal import Place, Principal, Role


def acknowledge(conn: psycopg.Connection, alert_id: int, principal: Principal, comment: str,
                now: datetime) -> None:
    """Record who acknowledged a firing alert and why; repeats and escalation stop."""
    row = conn.execute("SELECT township, village, state, acknowledged_at FROM alerts"
                       " WHERE id = %s FOR UPDATE", (alert_id,)).fetchone()
    if row is None:
        raise not_found(f"alert {alert_id}")
    place = Place(row[0], row[1])
    if not principal.may(Role.CADRE, place):
        raise forbidden("needs role cadre over the alert's place")
    if row[3] is not None:
        return  # already acknowledged: a second tap changes nothing
    if row[2] != "firing":
        raise Problem(409, "the alert is resolved already")
    conn.execute("UPDATE alerts SET acknowledged_at = %s, acknowledged_by = %s, ack_comment = %s"
                 " WHERE id = %s", (now, principal.name, comment, alert_id))
    conn.execute("INSERT INTO alert_acks (alert_id, acknowledged_by, acknowledged_at, comment)"
                 " VALUES (%s, %s, %s, %s)", (alert_id, principal.name, now, comment))
    conn.execute("INSERT INTO alert_transitions (alert_id, at, from_state, to_state, detail)"
                 " VALUES (%s, %s, 'firing', 'acknowledged', %s)", (alert_id, now, comment))
    audit.record(conn, principal, "alert.acknowledge", f"alert:{alert_id}", place,
                 {"comment": comment})
