"""The rules' `close_valve` action: close the valve of the meter whose leak or burst alert
fires, at once or once the on-duty person confirms from the notification's link.

Each step goes on the alert's timeline (`alert_transitions`): proposed (waiting for the
person), sent (with the command's id and who), refused (why); the delivery daemon adds the
outcome (`command_done`, `command_rejected` with the meter's reason, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import psycopg

from alerting.rules import Rule
from broadcast.command_service import CommandRequest, send_command
from broadcast.device_command import CommandDenied, CommandError
from ground.principal import Place, Principal, Role

PROPOSED = "valve_close_proposed"
SENT = "valve_close_sent"
REFUSED = "valve_close_refused"
EXPIRY = timedelta(hours=1)


def _note(conn: psycopg.Connection, alert_id: int, at: datetime, to_state: str,
          detail: str) -> None:
    conn.execute("INSERT INTO alert_transitions (alert_id, at, from_state, to_state, detail)"
                 " VALUES (%s, %s, 'firing', %s, %s)", (alert_id, at, to_state, detail))


def act(conn: psycopg.Connection, rules: Mapping[str, Rule], now: datetime) -> int:
    """Close (or propose closing) the valve of each firing alert whose rule says so, once;
    the number of alerts acted on."""
    names = [rule.name for rule in rules.values() if rule.close_valve != "off"]
    if not names:
        return 0
    rows = conn.execute(
        "SELECT a.id, a.rule, a.township FROM alerts a WHERE a.state = 'firing'"
        " AND a.rule = ANY(%s) AND a.device_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM alert_transitions t WHERE t.alert_id = a.id"
        "  AND t.to_state IN (%s, %s, %s))", (names, PROPOSED, SENT, REFUSED)).fetchall()
    for alert_id, rule_name, township in rows:
        rule = rules[rule_name]
        if rule.close_valve == "confirm":
            _note(conn, alert_id, now, PROPOSED,
                  "waiting for the on-duty person to confirm from the notification's link")
        else:
            close_valve(conn, alert_id, Principal(f"rule:{rule.name}", Role.OPERATOR,
                                                  Place(township)), f"rule {rule.name}", now)
    return len(rows)


def proposed(conn: psycopg.Connection, alert_id: int) -> bool:
    """Whether the alert waits for someone to confirm closing the valve."""
    states = {state for (state,) in conn.execute(
        "SELECT to_state FROM alert_transitions WHERE alert_id = %s AND to_state IN (%s, %s)",
        (alert_id, PROPOSED, SENT))}
    return states == {PROPOSED}


def close_valve(conn: psycopg.Connection, alert_id: int, principal: Principal, why: str,
                now: datetime) -> str | None:
    """Send `set_valve open=false` to the alert's meter; the command id, or None if refused
    (the reason is on the timeline)."""
    row = conn.execute("SELECT device_id FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    if row is None or row[0] is None:
        raise LookupError(f"alert {alert_id} has no device")
    request = CommandRequest("set_valve", f"alert #{alert_id}: {why}", {"open": False},
                             device_ids=[row[0]], expires_in=EXPIRY)
    try:
        command_id = send_command(conn, principal, request, now, alert_id=alert_id)
    except (CommandError, CommandDenied) as exc:
        _note(conn, alert_id, now, REFUSED, str(exc))
        return None
    _note(conn, alert_id, now, SENT, f"command {command_id} by {principal.name}")
    return command_id
