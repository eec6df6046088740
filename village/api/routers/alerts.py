"""Alerts: list and filter, show with history, acknowledge with a comment; rule checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerting import operations
from alerting.model import AlertView
from alerting.rules import RuleError
from devices.telemetry import EARLIEST, LATEST
from village.api import audit
from village.api.deps import Caller, Conn, Limit
from village.api.problems import Problem, about

router = APIRouter(tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAX_RULES_BYTES = 1024 * 1024


class AlertDetail(BaseModel):
    """An alert and its history."""

    alert: AlertView
    history: list[operations.HistoryEntry]


class Acknowledgement(BaseModel):
    """Why (or what was done), in the cadre's words."""

    comment: str = Field("", max_length=1000)


@router.get("/alerts", summary="List alerts")
def list_alerts(
    conn: Conn, caller: Caller, limit: Limit,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    state: Literal["firing", "resolved"] | None = None,
    severity: Literal["info", "minor", "major", "critical"] | None = None,
    township: str | None = None, village: str | None = None,
    device_id: str | None = None, rule: str | None = None, acknowledged: bool | None = None,
) -> list[AlertView]:
    """Alerts in the caller's scope, newest first, filtered."""
    where = operations.AlertFilter(state, severity, township, village, device_id, rule,
                                   acknowledged)
    return operations.list_alerts(conn, caller, where, limit, offset)


@router.get("/alerts/{alert_id}", summary="Show an alert with its history")
def show_alert(alert_id: AlertId, conn: Conn, caller: Caller) -> AlertDetail:
    """The alert, its transitions, acknowledgements and notifications."""
    view = operations.shown_alert(conn, caller, alert_id)
    return AlertDetail(alert=view, history=operations.alert_history(conn, alert_id))


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert")
def acknowledge(alert_id: AlertId, body: Acknowledgement, conn: Conn, caller: Caller) -> AlertView:
    """Acknowledge with a comment (a cadre over the alert's village): repeats stop."""
    operations.shown_alert(conn, caller, alert_id)
    alert = operations.acknowledge(conn, caller, alert_id, body.comment.strip(), datetime.now(UTC))
    audit.record(conn, caller, "alert.acknowledge", f"alert:{alert_id}", None,
                 {"comment": body.comment.strip()})
    return alert


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
        rules = operations.check_rules(text, "request")
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
        rules = operations.active_rules(alerting.rules_files, alerting.presets)
    except (RuleError, OSError) as exc:
        raise Problem(409, f"the configured rules do not load: {exc}") from None
    return [RuleInfo(name=r.name, severity=r.severity, condition_type=r.condition_type,
                     metric=r.metric, summary_zh=r.summary_zh, summary_en=r.summary_en)
            for r in rules]


class NewSilence(BaseModel):
    """Mute what matches, from `starts_at` (default now) to `ends_at` (at most 30 days)."""

    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, Annotated[str, Field(max_length=200)]] = Field(
        examples=[{"township": "east", "village": "east-1", "rule": "night_flow"}])
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    comment: str = Field("", max_length=1000)
    kind: Literal["silence", "maintenance"] = "silence"


@router.get("/silences", summary="List silences")
def list_silences(conn: Conn, caller: Caller) -> list[operations.SilenceRecord]:
    """Silences in force or to come that touch the caller's scope."""
    return operations.list_silences(conn, caller, datetime.now(UTC))


@router.post("/silences", status_code=201, summary="Create a silence")
def create_silence(body: NewSilence, conn: Conn, caller: Caller) -> operations.SilenceRecord:
    """Mute matching alerts for a bounded time (an operator over the place it names)."""
    now = datetime.now(UTC)
    if not EARLIEST <= (body.starts_at or now) <= body.ends_at <= LATEST:
        raise Problem(422, "times must be ordered and within reason", "body.ends_at")
    with about("matchers"):
        record = operations.create_silence(conn, caller, body.matchers, body.starts_at or now,
                                           body.ends_at, body.comment, now, body.kind)
    audit.record(conn, caller, "silence.create", f"silence:{record.id}",
                 operations.silence_place(body.matchers), {"matchers": body.matchers})
    return record


@router.delete("/silences/{silence_id}", status_code=204, summary="End a silence now")
def expire_silence(silence_id: Annotated[int, Path(ge=1, le=2**63 - 1)], conn: Conn,
                   caller: Caller) -> None:
    """End a silence now (an operator over the place it names)."""
    operations.expire_silence(conn, caller, silence_id, datetime.now(UTC))
    audit.record(conn, caller, "silence.expire", f"silence:{silence_id}")
