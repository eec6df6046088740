"""Device commands from the console: a selection from the device list (confirmed with how
many devices will get it), each command's per-device delivery filling in, and what a device
page shows of its commands. Sending and checking are the command service's, as for the API
and the CLI; the console only reads forms and shows the service's answers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from broadcast.command_reports import (
    CommandNotFound,
    any_open,
    delivery_page,
    recent_commands,
    sent_to_device,
    state_counts,
    visible_command,
)
from broadcast.command_service import CommandRequest, check_command, send_command
from broadcast.command_store import last_valve
from broadcast.device_command import VALVE_OP, CommandDenied, CommandError
from broadcast.model import DeliveryState
from devices.registry import DeviceView
from ground.errors import Denied
from ground.principal import Place, Principal
from village.api import audit
from village.api.deps import Conn
from village.console import command_forms, web
from village.console.command_forms import DEFAULT_EXPIRY_MINUTES, ops_offered

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
PAGE_SIZE = 100
LISTED_DAYS = 90  # how far back the list of commands goes
# The device list's filters a selection carries over (the rest cannot select devices).
SELECTING = ("kind", "township", "village", "grid")
_UNSELECTABLE = {"q": "search", "status": "status", "firmware": "firmware"}  # to words keys
Text = Annotated[str | None, Query(max_length=100)]


def refusal_status(exc: Exception) -> int:
    """403 for what the role or scope forbids, 422 for a command that cannot be sent."""
    return 403 if isinstance(exc, Denied) else 422


def send_and_audit(conn: Conn, principal: Principal, request: CommandRequest,
                   place: Place | None) -> str:
    """Send through the command service and audit who sent what and why; the command's id.
    CommandError or CommandDenied (nothing sent) as the service raises them."""
    command_id = send_command(conn, principal, request, web.now())
    audit.record(conn, principal, "device.command", f"command:{command_id}", place,
                 {"op": request.op, "args": dict(request.args), "why": request.why,
                  "selection": request.selection()})
    return command_id


def form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """What was typed into a command form, to show it again with an error."""
    return {key: str(value) for key, value in form.items()
            if key in ("op", "why", "expires_minutes") or key.startswith(command_forms.ARG_PREFIX)}


def device_panel(conn: Conn, principal: Principal, device: DeviceView) -> dict[str, Any]:
    """A device page's command part: the valve as last reported, the device's newest
    commands with their answers, and the forms of the ops the principal may send it."""
    valve = last_valve(conn, device.device_id)
    recent = sent_to_device(conn, device.device_id)
    # A meter that closed its valve reports the new position only with its next readings.
    awaiting_valve = valve is not None and any(
        c["op"] == VALVE_OP and c["state"] == DeliveryState.DONE
        and c["finished_at"] is not None and c["finished_at"] > valve[1] for c in recent)
    forms = (ops_offered(principal, device.kind, device.place, valve is not None)
             if device.lifecycle == "active" and device.gateway_id is None else [])
    return {"valve": valve, "recent_commands": recent, "awaiting_valve": awaiting_valve,
            "commands_live": awaiting_valve or any_open([c["state"] for c in recent]),
            "command_forms": forms, "default_expiry": DEFAULT_EXPIRY_MINUTES}


def selection(principal: Principal, chosen: Mapping[str, str]) -> dict[str, Any] | None:
    """The device list's command forms for its chosen kind, with the filters they select
    by (the principal's own scope filled in), or None if none may be sent from there."""
    forms = ops_offered(principal, chosen["kind"]) if chosen.get("kind") else []
    if not forms:
        return None
    filters = {name: chosen[name] for name in SELECTING if chosen.get(name)}
    for name, value in (("township", principal.scope.township),
                        ("village", principal.scope.village)):
        if value is not None:
            filters.setdefault(name, value)
    return {"forms": forms, "filters": filters, "default_expiry": DEFAULT_EXPIRY_MINUTES,
            "unapplied": [key for name, key in _UNSELECTABLE.items() if chosen.get(name)]}


def _selected(form: Mapping[str, Any]) -> tuple[CommandRequest, dict[str, str]]:
    filters = {name: str(form[name]) for name in SELECTING if form.get(name)}
    return command_forms.request_from_form(form, filters=filters), filters


def _confirm_page(request: Request, session: web.Session, form: Mapping[str, Any],
                  status: int = 200, **shown: Any) -> Response:
    return web.render(request, "command_confirm.html", session, status, page="devices",
                      values=form_values(form),
                      filters={name: str(form[name]) for name in SELECTING if form.get(name)},
                      **shown)


@router.post("/commands/confirm")
def confirm(request: Request, conn: Conn, session: web.SignedIn, form: web.Form) -> Response:
    """Check a selection's command in full and say how many devices it will reach."""
    try:
        asked, _ = _selected(form)
        command, targets = check_command(conn, session.user.principal, asked,
                                         web.now())
    except (CommandError, CommandDenied) as exc:
        return _confirm_page(request, session, form, refusal_status(exc), error=str(exc))
    return _confirm_page(request, session, form, op=command.op,
                         args=command.model_dump(exclude={"id", "op", "expires_at"},
                                                 exclude_none=True),
                         selection_label=asked.selection(), devices=len(targets),
                         sample=[target.device_id for target in targets[:10]])


@router.post("/commands")
def send(request: Request, conn: Conn, session: web.SignedIn, form: web.Form) -> Response:
    """Send a confirmed selection's command, then follow it."""
    try:
        asked, filters = _selected(form)
        command_id = send_and_audit(conn, session.user.principal, asked,
                                    Place(filters.get("township"), filters.get("village")))
    except (CommandError, CommandDenied) as exc:
        return _confirm_page(request, session, form, refusal_status(exc), error=str(exc))
    return web.redirect(f"/commands/{command_id}")


@router.get("/commands")
def commands(request: Request, conn: Conn, session: web.SignedIn) -> Response:
    """The newest commands the user may follow, with how far each has come."""
    since = web.now() - timedelta(days=LISTED_DAYS)
    return web.render(request, "commands.html", session, page="devices", days=LISTED_DAYS,
                      commands=recent_commands(conn, session.user.principal.scope, since))


def _command(request: Request, conn: Conn, session: web.Session, command_id: str,
             template: str, state: str | None, after: str | None) -> Response:
    try:
        command = visible_command(conn, session.user.principal, command_id)
    except (CommandNotFound, CommandDenied) as exc:
        raise web.NotAllowed(str(exc)) from None
    state = state if state in set(DeliveryState) else None
    counts = state_counts(conn, command_id)
    rows = delivery_page(conn, command_id, state, after or None, PAGE_SIZE)
    return web.render(request, template, session, page="devices", command=command,
                      counts=counts, total=sum(counts.values()), deliveries=rows,
                      state=state, after=after or "", live=any_open(list(counts)),
                      next_after=rows[-1]["device_id"] if len(rows) == PAGE_SIZE else None)


@router.get("/commands/{command_id}")
def command_page(request: Request, command_id: str, conn: Conn, session: web.SignedIn,
                 state: Text = None, after: Text = None) -> Response:
    """A command with its devices' states counted, and a page of them, filling in live."""
    return _command(request, conn, session, command_id, "command.html", state, after)


@router.get("/commands/{command_id}/deliveries")
def command_deliveries(request: Request, command_id: str, conn: Conn, session: web.SignedIn,
                       state: Text = None, after: Text = None) -> Response:
    """The counts and the page of deliveries alone, for the page's polling."""
    return _command(request, conn, session, command_id, "command_deliveries.html", state,
                    after)
