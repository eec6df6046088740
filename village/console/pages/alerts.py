"""Alerts: firing, acknowledged, resolved, filtered; one alert's timeline and readings;
acknowledge with a comment, silence until a time. New alerts appear by polling (htmx)."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from alerting import operations
from alerting.model import AlertView
from alerting.rules import RuleError, leak_or_burst
from broadcast import command_store
from broadcast.device_command import VALVE_OP, CommandDenied, CommandError, check_targets
from ground.principal import Place, Principal, Role
from village.api import audit
from village.api.deps import Conn
from village.console import web
from village.console.charts import chart_data

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
PAGE_SIZE = 100
# The three lists a duty officer switches between.
STATES: dict[str, tuple[str, bool | None]] = {
    "firing": ("firing", False), "acknowledged": ("firing", True), "resolved": ("resolved", None),
}
Text = Annotated[str | None, Query(max_length=100)]


def _filter(state: str, severity: str | None, township: str | None, village: str | None,
            kind: str | None) -> operations.AlertFilter:
    alert_state, acknowledged = STATES.get(state, STATES["firing"])
    return operations.AlertFilter(state=alert_state, acknowledged=acknowledged,
                                   severity=severity or None, township=township or None,
                                   village=village or None, kind=kind or None)


def _list(request: Request, conn: Conn, session: web.Session, template: str, state: str,
          severity: str | None, township: str | None, village: str | None,
          kind: str | None) -> Response:
    where = _filter(state, severity, township, village, kind)
    alerts = operations.list_alerts(conn, session.user.principal, where, PAGE_SIZE, 0)
    return web.render(request, template, session, page="alerts", alerts=alerts, state=state,
                      states=list(STATES), severities=("critical", "major", "minor", "info"),
                      chosen={"severity": severity or "", "township": township or "",
                              "village": village or "", "kind": kind or ""})


@router.get("/alerts")
def alerts(request: Request, conn: Conn, session: web.SignedIn, state: str = "firing",
           severity: Text = None, township: Text = None, village: Text = None,
           kind: Text = None) -> Response:
    """The alert list with its filters; the list refreshes itself."""
    return _list(request, conn, session, "alerts.html", state, severity, township, village, kind)


@router.get("/alerts/rows")
def alert_rows(request: Request, conn: Conn, session: web.SignedIn, state: str = "firing",
               severity: Text = None, township: Text = None, village: Text = None,
               kind: Text = None) -> Response:
    """The list's rows alone, for the page's polling."""
    return _list(request, conn, session, "alert_rows.html", state, severity, township, village,
                 kind)


def _visible(conn: Conn, session: web.Session, alert_id: int) -> AlertView:
    try:
        return operations.shown_alert(conn, session.user.principal, alert_id)
    except (operations.AlertNotFound, operations.AlertDenied) as exc:
        raise web.NotAllowed(str(exc)) from None


def _valve_closable(request: Request, conn: Conn, principal: Principal,
                    view: AlertView) -> bool:
    """A firing leak or burst alert of a meter the command service would let this user close
    (its own checks: role, scope, a reported valve, active, not carried by a gateway)."""
    if view.state != "firing" or view.kind != "water_meter" or view.device_id is None:
        return False
    alerting = request.app.state.settings.alerting
    try:
        versions = tuple(os.stat(path).st_mtime_ns for path in alerting.rules_files)
        rules = _valve_rules(tuple(alerting.rules_files), alerting.presets, versions)
    except (RuleError, OSError):
        return False  # the alert page still shows; the device page is one click away
    if view.rule not in rules:
        return False
    found, _ = command_store.targets(conn, [view.device_id])
    try:
        check_targets(principal, VALVE_OP, found)
    except (CommandError, CommandDenied):
        return False
    return True


@lru_cache(maxsize=4)
def _valve_rules(files: tuple[str, ...], presets: bool, versions: tuple[int, ...]) -> frozenset[str]:
    """The names of the active leak and burst rules. Parsed once per version of the files:
    loading the rules takes a fifth of a second."""
    del versions  # part of the cache's key only
    return frozenset(rule.name for rule in operations.active_rules(list(files), presets)
                     if leak_or_burst(rule))


def _detail(request: Request, conn: Conn, session: web.Session, alert_id: int,
            error: str | None = None, status: int = 200) -> Response:
    view = _visible(conn, session, alert_id)
    now = web.now()
    chart = None
    if view.device_id and view.metric:
        start = view.started_at - timedelta(hours=6)
        end = min((view.resolved_at or now) + timedelta(hours=1), now)
        chart = orjson.dumps(chart_data(conn, view.device_id, view.metric, start, end,
                                        request.app.state.settings.api)).decode()
    principal = session.user.principal
    place = Place(view.township, view.village)
    return web.render(request, "alert.html", session, status, page="alerts", alert=view,
                      history=operations.alert_history(conn, alert_id), chart=chart,
                      may_ack=principal.may(Role.CADRE, place),
                      may_silence=principal.may(Role.OPERATOR, place),
                      may_close_valve=_valve_closable(request, conn, principal, view),
                      silence_default=web.local_time(request, now + timedelta(hours=4), True),
                      error=error)


@router.get("/alerts/{alert_id}")
def alert(request: Request, alert_id: int, conn: Conn, session: web.SignedIn) -> Response:
    """One alert: its figures, timeline, readings around it, and what the user may do."""
    return _detail(request, conn, session, alert_id)


@router.post("/alerts/{alert_id}/ack")
def acknowledge(request: Request, alert_id: int, conn: Conn, session: web.SignedIn,
                form: web.Form) -> Response:
    """Acknowledge with a comment (a cadre over the alert's village)."""
    _visible(conn, session, alert_id)
    comment = str(form.get("comment", "")).strip()[:1000]
    principal = session.user.principal
    try:
        operations.acknowledge(conn, principal, alert_id, comment, web.now())
    except (operations.AlertDenied, operations.AlertNotFound) as exc:
        return _detail(request, conn, session, alert_id, str(exc), 403)
    audit.record(conn, principal, "alert.acknowledge", f"alert:{alert_id}", None,
                 {"comment": comment})
    return web.redirect(f"/alerts/{alert_id}")


@router.post("/alerts/{alert_id}/silence")
def silence(request: Request, alert_id: int, conn: Conn, session: web.SignedIn,
            form: web.Form) -> Response:
    """Silence this alert's rule on its device (or area) until the given time."""
    view = _visible(conn, session, alert_id)
    principal = session.user.principal
    try:
        ends_at = web.typed_time(request, str(form.get("ends_at", "")))
    except ValueError:
        return _detail(request, conn, session, alert_id, "ends_at: not a time", 422)
    matchers = {key: value for key, value in (
        ("township", view.township), ("village", view.village), ("device_id", view.device_id),
        ("rule", view.rule)) if value}
    now = web.now()
    try:
        record = operations.create_silence(conn, principal, matchers, now, ends_at,
                                           str(form.get("comment", "")).strip()[:1000], now)
    except (operations.SilenceError, operations.AlertDenied) as exc:
        return _detail(request, conn, session, alert_id, str(exc), 422)
    audit.record(conn, principal, "silence.create", f"silence:{record.id}",
                 Place(view.township, view.village), {"matchers": matchers})
    return web.redirect(f"/alerts/{alert_id}")

