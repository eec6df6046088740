"""Devices: search and filter, and one device's page (place, status history, latest values,
a chart over a chosen range, dead letters, alerts, and the actions the role allows)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from alerting import operations
from broadcast.device_command import CommandDenied, CommandError
from devices import service, status_history_store
from devices.registry import DeviceDenied, DeviceFilter, DeviceNotFound, DeviceView
from devices.telemetry import LatestFilter, RangeError, latest
from ground.errors import Conflict
from ground.principal import Role
from village.api import audit
from village.api.deps import Conn
from village.console import web
from village.console.charts import RANGES, chart_data
from village.console.command_forms import request_from_form
from village.console.pages import device_commands

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
PAGE_SIZE = 100
STATUSES = {"online": True, "offline": False}
Text = Annotated[str | None, Query(max_length=100)]


@router.get("/devices")
def devices(request: Request, conn: Conn, session: web.SignedIn, q: Text = None,
            kind: Text = None, township: Text = None, village: Text = None, grid: Text = None,
            status: Text = None, firmware: Text = None, after: Text = None) -> Response:
    """A page of devices in scope matching the filters, by id."""
    where = DeviceFilter(
        kind=kind or None, township=township or None, village=village or None, grid=grid or None,
        lifecycle="active", online=STATUSES.get(status or ""), search=(q or "").strip() or None,
        firmware=firmware or None)
    rows = service.list_devices(conn, session.user.principal, where, after or None,
                                     PAGE_SIZE)
    chosen = {"q": q or "", "kind": kind or "", "township": township or "",
              "village": village or "", "grid": grid or "", "status": status or "",
              "firmware": firmware or ""}
    next_query = "&".join(f"{k}={v}" for k, v in chosen.items() if v)
    return web.render(request, "devices.html", session, page="devices", devices=rows,
                      chosen=chosen, kinds=[r[0] for r in conn.execute(
                          "SELECT kind FROM device_kinds ORDER BY kind").fetchall()],
                      next_after=rows[-1].device_id if len(rows) == PAGE_SIZE else None,
                      next_query=next_query,
                      may_import=session.user.principal.role >= Role.OPERATOR,
                      selection=device_commands.selection(session.user.principal, chosen))


def _visible(conn: Conn, session: web.Session, device_id: str) -> DeviceView:
    try:
        return service.shown_device(conn, session.user.principal, device_id)
    except (DeviceNotFound, DeviceDenied) as exc:
        raise web.NotAllowed(str(exc)) from None


def _chart(request: Request, conn: Conn, device: DeviceView, metric: str | None,
           span: str) -> tuple[str | None, str | None]:
    if metric is None:
        return None, None
    end = web.now()
    try:
        data = chart_data(conn, device.device_id, metric, end - RANGES[span], end,
                          request.app.state.settings.api)
    except RangeError as exc:
        return None, str(exc)
    return orjson.dumps(data).decode(), None


def _device_page(request: Request, conn: Conn, session: web.Session, device_id: str,
                 metric: str | None = None, span: str = "1d", secret: str | None = None,
                 error: str | None = None, status: int = 200,
                 command_values: dict[str, str] | None = None) -> Response:
    device = _visible(conn, session, device_id)
    principal = session.user.principal
    metrics = [r[0] for r in conn.execute(
        "SELECT metric FROM metrics WHERE kind = %s ORDER BY metric", (device.kind,)).fetchall()]
    chosen_metric = metric if metric in metrics else (metrics[0] if metrics else None)
    span = span if span in RANGES else "1d"
    chart, chart_error = _chart(request, conn, device, chosen_metric, span)
    values = latest(conn, principal, LatestFilter(device_id=device_id), None, 1).values
    dead = conn.execute(
        "SELECT received_at, topic, reason, detail FROM dead_letters WHERE device_id = %s"
        " ORDER BY received_at DESC LIMIT 20", (device_id,)).fetchall()
    alerts = operations.list_alerts(conn, principal, operations.AlertFilter(device_id=device_id),
                                    20, 0)
    _, presence, history = service.history(conn, principal, device_id)
    return web.render(
        request, "device.html", session, status, page="devices", device=device,
        history=history, presence=presence, values=values,
        status_changes=status_history_store.recent(conn, device_id), metrics=metrics,
        metric=chosen_metric, span=span, spans=list(RANGES), chart=chart,
        error=error or chart_error, dead_letters=dead, alerts=alerts, secret=secret,
        may_act=principal.may(Role.OPERATOR, device.place) and device.lifecycle == "active",
        command_values=command_values or {},
        **device_commands.device_panel(conn, principal, device))


@router.get("/devices/{device_id}")
def device(request: Request, device_id: str, conn: Conn, session: web.SignedIn,
           metric: Text = None, span: Text = None) -> Response:
    """One device's page."""
    return _device_page(request, conn, session, device_id, metric, span or "1d")


def _may_act(conn: Conn, session: web.Session, device_id: str) -> DeviceView:
    row = _visible(conn, session, device_id)
    if not session.user.principal.may(Role.OPERATOR, row.place):
        raise web.NotAllowed("needs role operator over this place")
    return row


@router.post("/devices/{device_id}/retire")
def retire(request: Request, device_id: str, conn: Conn, session: web.SignedIn,
           form: web.Form) -> Response:
    """Retire the device (its history stays; its messages are refused from now on)."""
    _may_act(conn, session, device_id)
    principal = session.user.principal
    try:
        place = service.retire(conn, principal, device_id)
    except Conflict as exc:
        return _device_page(request, conn, session, device_id, error=str(exc), status=409)
    audit.record(conn, principal, "device.retire", f"device:{device_id}", place)
    return web.redirect(f"/devices/{device_id}")


@router.post("/devices/{device_id}/rotate-secret")
def rotate_secret(request: Request, device_id: str, conn: Conn, session: web.SignedIn,
                  form: web.Form) -> Response:
    """Issue a new secret, shown once on the page that answers."""
    row = _may_act(conn, session, device_id)
    principal = session.user.principal
    secret = service.rotate_secret(conn, principal, device_id)
    audit.record(conn, principal, "device.rotate_secret", f"device:{device_id}", row.place)
    return _device_page(request, conn, session, device_id, secret=secret)


@router.post("/devices/{device_id}/commands")
def command(request: Request, device_id: str, conn: Conn, session: web.SignedIn,
            form: web.Form) -> Response:
    """Send one of its kind's commands to the device (checked and audited by the command
    service's rules); back to its page, where the answer fills in."""
    device = _visible(conn, session, device_id)
    try:
        device_commands.send_and_audit(conn, session.user.principal,
                                       request_from_form(form, device_ids=[device_id]),
                                       device.place)
    except (CommandError, CommandDenied) as exc:
        return _device_page(request, conn, session, device_id, error=str(exc),
                            status=device_commands.refusal_status(exc),
                            command_values=device_commands.form_values(form))
    return web.redirect(f"/devices/{device_id}#commands")


@router.get("/devices/{device_id}/commands")
def commands(request: Request, device_id: str, conn: Conn, session: web.SignedIn) -> Response:
    """The device's valve and newest commands alone, for the page's polling."""
    device = _visible(conn, session, device_id)
    return web.render(request, "device_commands.html", session, device=device,
                      **device_commands.device_panel(conn, session.user.principal, device))
