"""Alerts: list and filter, show with history, acknowledge with a comment; rule checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from alerting.rules import RuleError, load_rules, parse_rules
from village.api import alert_actions, alert_store
from village.api.deps import Caller, Conn, Limit
from village.api.problems import Problem, forbidden, not_found
from village.principal import Place, Role

router = APIRouter(tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAX_RULES_BYTES = 1024 * 1024


class Alert(BaseModel):
    """An alert with its place, value and acknowledgement."""

    alert_id: int
    severity: str
    state: str
    summary: str
    device_id: str | None
    device_name: str | None
    township: str | None
    village: str | None
    grid: str | None
    metric: str | None
    unit: str | None
    value: float | None
    threshold: float | None
    last_value: float | None
    started_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None


class HistoryEntry(BaseModel):
    """One step of an alert's life, or one message sent about it."""

    at: datetime
    what: str
    detail: dict[str, Any]


class AlertDetail(BaseModel):
    """An alert and its history."""

    alert: Alert
    history: list[HistoryEntry]


class Acknowledgement(BaseModel):
    """Why (or what was done), in the cadre's words."""

    comment: str = Field("", max_length=1000)


def _model(view: alert_store.AlertView) -> Alert:
    return Alert.model_validate(view, from_attributes=True)


def _visible(conn: Conn, caller: Caller, alert_id: int) -> alert_store.AlertView:
    view = alert_store.get_alert(conn, alert_id)
    if view is None:
        raise not_found(f"alert {alert_id}")
    if not caller.may(Role.VIEWER, Place(view.township, view.village)):
        raise forbidden("outside your scope")
    return view


@router.get("/alerts", summary="List alerts")
def list_alerts(
    conn: Conn, caller: Caller, limit: Limit,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    state: Literal["firing", "resolved"] | None = None,
    severity: Literal["info", "minor", "major", "critical"] | None = None,
    township: str | None = None, village: str | None = None,
    device_id: str | None = None, rule: str | None = None, acknowledged: bool | None = None,
) -> list[Alert]:
    """Alerts in the caller's scope, newest first, filtered."""
    where = alert_store.AlertFilter(state, severity, township, village, device_id, rule,
                                    acknowledged)
    return [_model(v) for v in alert_store.list_alerts(conn, caller, where, limit, offset)]


@router.get("/alerts/{alert_id}", summary="Show an alert with its history")
def show_alert(alert_id: AlertId, conn: Conn, caller: Caller) -> AlertDetail:
    """The alert, its transitions, acknowledgements and notifications."""
    view = _visible(conn, caller, alert_id)
    history = [HistoryEntry.model_validate(h, from_attributes=True)
               for h in alert_store.alert_history(conn, alert_id)]
    return AlertDetail(alert=_model(view), history=history)


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert")
def acknowledge(alert_id: AlertId, body: Acknowledgement, conn: Conn, caller: Caller) -> Alert:
    """Acknowledge with a comment (a cadre over the alert's village): repeats stop."""
    _visible(conn, caller, alert_id)
    alert_actions.acknowledge(conn, alert_id, caller, body.comment.strip(), datetime.now(UTC))
    return _model(_visible(conn, caller, alert_id))


class RuleCheck(BaseModel):
    """The rules a file defines, if every one of them is valid."""

    rules: list[str]


async def yaml_body(request: Request) -> str:
    """A rules file sent as YAML text, bounded in size."""
    body = await request.body()
    if len(body) > MAX_RULES_BYTES:
        raise Problem(413, f"at most {MAX_RULES_BYTES} bytes", "body")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(422, "the rules file is not UTF-8", "body") from None


@router.post("/rules/check", summary="Validate a rules file", openapi_extra={
    "requestBody": {"required": True,
                    "content": {"application/yaml": {"schema": {"type": "string"}}}}})
def check_rules(text: Annotated[str, Depends(yaml_body)], caller: Caller) -> RuleCheck:
    """Parse a YAML rules file with the alerting service's strict rules (nothing is stored)."""
    try:
        rules = parse_rules(text, "request")
    except RuleError as exc:
        raise Problem(422, str(exc), "body") from None
    return RuleCheck(rules=[rule.name for rule in rules])


class RuleInfo(BaseModel):
    """An active rule, as the alerting service loaded it."""

    name: str
    severity: str
    condition_type: str
    metric: str | None
    summary_zh: str
    summary_en: str


@router.get("/rules", summary="List the active rules")
def list_rules(request: Request, caller: Caller) -> list[RuleInfo]:
    """The presets and the configured rule files, as the alerting service loads them."""
    alerting = request.app.state.settings.alerting
    try:
        rules = load_rules(alerting.rules_files, alerting.presets)
    except (RuleError, OSError) as exc:
        raise Problem(409, f"the configured rules do not load: {exc}") from None
    return [RuleInfo(name=r.name, severity=r.severity, condition_type=r.condition_type,
                     metric=r.metric, summary_zh=r.summary_zh, summary_en=r.summary_en)
            for r in rules]
