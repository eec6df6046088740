"""The cadre's phone page: `/a/{token}` shows one alert; posting to it acknowledges it.

No login: the signed, expiring token in the link is the permission, for that alert and
that person only. The page loads nothing from outside (a strict Content-Security-Policy).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerting import operations, valve_action
from alerting.model import AlertView
from devices import telemetry
from ground.links import LinkError, LinkExpired, LinkGrant, verify_link_token
from ground.principal import Place, Principal, Role
from village.api import audit
from village.api.deps import Conn, api_settings
from village.api.phone_page import CONTENT_SECURITY_POLICY, alert_page, refusal_page
from village.api.problems import Problem
from village.api.settings import ApiSettings

router = APIRouter(include_in_schema=False)
HISTORY = timedelta(hours=24)
MAX_COMMENT = 1000
_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"}


class Refused(Exception):
    """The link is altered, malformed or expired (or its alert is gone)."""

    def __init__(self, expired: bool) -> None:
        self.expired = expired


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def grant(token: str, request: Request) -> LinkGrant:
    """The grant the link's token carries, or a refusal page."""
    try:
        return verify_link_token(request.app.state.link_secret, token, datetime.now(UTC))
    except LinkError as exc:
        raise Refused(expired=isinstance(exc, LinkExpired)) from None


Grant = Annotated[LinkGrant, Depends(grant)]


def _history(conn: Conn, alert: AlertView,
             settings: ApiSettings) -> list[tuple[datetime, float]]:
    if alert.device_id is None or alert.metric is None:
        return []
    end = min(datetime.now(UTC), (alert.resolved_at or datetime.now(UTC)) + timedelta(hours=1))
    limits = telemetry.Limits(HISTORY, HISTORY, settings.max_points)
    return telemetry.series(conn, alert.device_id, alert.metric, end - HISTORY, end,
                            telemetry.Bucket.MIN_15, telemetry.Agg.AVG, limits)


@router.get("/a/{token}", response_class=HTMLResponse)
def show(token: str, link: Grant, conn: Conn,
         settings: Annotated[ApiSettings, Depends(api_settings)]) -> HTMLResponse:
    """The alert of the link, its place, value and recent history, and the ack form."""
    alert = operations.find_alert(conn, link.alert_id)
    if alert is None:
        return _html(refusal_page(expired=False), 404)
    close = (f"/a/{token}/close-valve" if alert.state == "firing"
             and valve_action.proposed(conn, link.alert_id) else None)
    return _html(alert_page(alert, _history(conn, alert, settings), f"/a/{token}", close))


async def comment_form(request: Request) -> str:
    """The comment of the posted form (urlencoded), trimmed and bounded."""
    body = await request.body()
    form = parse_qs(body[: 16 * MAX_COMMENT].decode("utf-8", "replace"))
    comment = form.get("comment", [""])[0].strip()[:MAX_COMMENT]
    if "\x00" in comment:
        raise Problem(422, "the comment holds a NUL character", "body.comment")
    return comment


@router.post("/a/{token}")
def acknowledge(token: str, link: Grant, comment: Annotated[str, Depends(comment_form)],
                conn: Conn) -> Response:
    """Acknowledge the link's alert as the link's person, with the comment typed."""
    alert = operations.find_alert(conn, link.alert_id)
    if alert is None:
        return _html(refusal_page(expired=False), 404)
    person = Principal(f"person:{link.person_id}", Role.CADRE, Place(alert.township, alert.village))
    operations.acknowledge(conn, person, link.alert_id, comment, datetime.now(UTC))
    audit.record(conn, person, "alert.acknowledge", f"alert:{link.alert_id}", person.scope,
                 {"comment": comment, "via": "link"})
    # Post/redirect/get: reloading the page does not post again.
    return RedirectResponse(f"/a/{token}", status_code=303, headers=_HEADERS)


@router.post("/a/{token}/close-valve")
def close_valve(token: str, link: Grant, conn: Conn) -> Response:
    """Close the alert's meter valve as the link's person, where the rule asks for this."""
    alert = operations.find_alert(conn, link.alert_id)
    if alert is None:
        return _html(refusal_page(expired=False), 404)
    if alert.state == "firing" and valve_action.proposed(conn, link.alert_id):
        # The rule's author allowed this action; the person confirms it for the alert's place.
        person = Principal(f"person:{link.person_id}", Role.OPERATOR,
                           Place(alert.township, alert.village))
        command_id = valve_action.close_valve(conn, link.alert_id, person,
                                              "confirmed from the notification's link",
                                              datetime.now(UTC))
        audit.record(conn, person, "alert.close_valve", f"alert:{link.alert_id}", person.scope,
                     {"command": command_id, "via": "link"})
    return RedirectResponse(f"/a/{token}", status_code=303, headers=_HEADERS)


def on_refused(request: Request, exc: Exception) -> HTMLResponse:
    """403 for an altered or malformed link, 410 for an expired one."""
    assert isinstance(exc, Refused)
    return _html(refusal_page(exc.expired), 410 if exc.expired else 403)
