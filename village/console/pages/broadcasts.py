"""Broadcasts: compose (text or uploaded audio, priority, a target the operator may address,
expiry, optional schedule), confirm emergencies, watch each speaker's delivery, cancel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from broadcast import schedules, service, store
from broadcast.model import BroadcastDenied, BroadcastError, BroadcastRequest, NotFound
from ground.principal import Place, Role
from village.api import audit
from village.api.deps import Conn
from village.console import web
from village.console.audio import AudioRefused, audio_url, store_audio
from village.console.targets import Target, choices, scope_of

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
IN_PROGRESS = ("new", "active")
# The fields a confirmation page carries over (an upload is stored first, then its URL is).
_CARRIED = ("text", "audio_url", "priority", "target", "speakers", "expires_minutes", "at",
            "cron", "name")


def _targets(conn: Conn, session: web.Session) -> list[Target]:
    rows = conn.execute("SELECT township, village, count(*) FROM devices WHERE kind = 'speaker'"
                        " AND lifecycle = 'active' GROUP BY 1, 2").fetchall()
    return choices(session.user.principal, [(Place(t, v), n) for t, v, n in rows],
                   store.load_groups(conn))


def _page(request: Request, conn: Conn, session: web.Session, error: str | None = None,
          status: int = 200, values: Mapping[str, Any] | None = None) -> Response:
    principal = session.user.principal
    return web.render(request, "broadcasts.html", session, status, page="broadcasts",
                      reports=service.list_broadcasts(conn, principal, web.now(), 50),
                      schedules=schedules.list_schedules(conn, principal),
                      targets=_targets(conn, session), error=error, values=values or {})


@router.get("/broadcasts")
def broadcasts(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """Recent broadcasts and, for operators, the compose form."""
    return _page(request, conn, session)


def _request(form: Mapping[str, Any], audio: str | None) -> BroadcastRequest:
    text = str(form.get("text", "")).strip() or None
    minutes = float(str(form.get("expires_minutes") or 30))
    return BroadcastRequest(
        scope=scope_of(str(form.get("target", "")), str(form.get("speakers", ""))),
        text=None if audio else text, audio_url=audio,
        priority=str(form.get("priority", "normal")),
        expires_in_s=max(1, int(minutes * 60)))


@router.post("/broadcasts")
async def send(request: Request, conn: Conn, session: web.SignedIn, form: web.Form) -> Response:
    """Send now, or schedule; an emergency is sent only once confirmed."""
    web.require(session, Role.OPERATOR)
    principal = session.user.principal
    values = {key: str(form.get(key) or "") for key in _CARRIED}
    try:
        upload = form.get("audio")
        if isinstance(upload, UploadFile) and upload.filename:
            name = store_audio(conn, principal, upload.filename, await upload.read())
            values["audio_url"] = audio_url(request, name)
        broadcast_request = _request(form, values["audio_url"] or None)
    except (ValueError, ValidationError, AudioRefused) as exc:
        return _page(request, conn, session, _reason(exc), 422, values)
    if broadcast_request.priority == "emergency" and form.get("confirmed") != "yes":
        return web.render(request, "broadcast_confirm.html", session, page="broadcasts",
                          values=values, request_=broadcast_request)
    now = web.now()
    try:
        if values["at"] or values["cron"]:
            schedule_id = schedules.create_schedule(
                conn, broadcast_request, principal, now, name=values["name"] or "console",
                cron=values["cron"] or None,
                at=web.typed_time(request, values["at"]) if values["at"] else None,
                timezone=web.console_settings(request).timezone)
            audit.record(conn, principal, "schedule.create", f"schedule:{schedule_id}", None,
                         {"name": values["name"], "cron": values["cron"] or None})
            return web.redirect("/broadcasts")
        broadcast_id = service.create_broadcast(conn, broadcast_request, principal, now)
    except (BroadcastError, BroadcastDenied, ValueError) as exc:
        return _page(request, conn, session, _reason(exc), 422, values)
    audit.record(conn, principal, "broadcast.send", f"broadcast:{broadcast_id}", None,
                 {"scope": broadcast_request.scope.label(), "priority": broadcast_request.priority})
    return web.redirect(f"/broadcasts/{broadcast_id}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(error["msg"] for error in exc.errors())
    return str(exc)


def _deliveries(conn: Conn, broadcast_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT d.device_id, d.state, d.reason, d.attempts, d.last_sent_at, d.accepted_at,"
        " d.finished_at, v.village FROM broadcast_deliveries d"
        " LEFT JOIN devices v ON v.device_id = d.device_id"
        " WHERE d.broadcast_id = %s ORDER BY d.device_id", (broadcast_id,)).fetchall()
    columns = ("device_id", "state", "reason", "attempts", "last_sent_at", "accepted_at",
               "finished_at", "village")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _detail(request: Request, conn: Conn, session: web.Session, broadcast_id: str,
            template: str) -> Response:
    try:
        detail = service.show_broadcast(conn, broadcast_id, session.user.principal, web.now())
    except NotFound as exc:
        raise web.NotAllowed(str(exc)) from None
    principal = session.user.principal
    return web.render(request, template, session, page="broadcasts", detail=detail,
                      deliveries=_deliveries(conn, broadcast_id),
                      may_cancel=principal.may(Role.OPERATOR, detail.broadcast.place)
                      and detail.report.status in IN_PROGRESS,
                      live=detail.report.status in IN_PROGRESS)


@router.get("/broadcasts/{broadcast_id}")
def broadcast(request: Request, broadcast_id: str, conn: Conn, session: web.SignedIn) -> Response:
    """A broadcast with each speaker's delivery, filling in as speakers answer."""
    return _detail(request, conn, session, broadcast_id, "broadcast.html")


@router.get("/broadcasts/{broadcast_id}/deliveries")
def deliveries(request: Request, broadcast_id: str, conn: Conn,
               session: web.SignedIn) -> Response:
    """The delivery table alone, for the page's polling."""
    return _detail(request, conn, session, broadcast_id, "broadcast_deliveries.html")


@router.post("/broadcasts/{broadcast_id}/cancel")
def cancel(request: Request, broadcast_id: str, conn: Conn, session: web.SignedIn,
           form: web.Form) -> Response:
    """Cancel: open deliveries stop; speakers already playing are told to stop."""
    principal = session.user.principal
    try:
        service.cancel_broadcast(conn, broadcast_id, principal, web.now())
    except (NotFound, BroadcastDenied) as exc:
        raise web.NotAllowed(str(exc)) from None
    audit.record(conn, principal, "broadcast.cancel", f"broadcast:{broadcast_id}")
    return web.redirect(f"/broadcasts/{broadcast_id}")

