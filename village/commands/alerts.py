"""The `village alerts` and `village rules` commands: thin calls of alerting.operations."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.table import Table

from alerting.operations import (
    STATE_FILTERS,
    acknowledge,
    check_rules,
    create_silence,
    expire_silence,
    list_alerts,
    list_silences,
)
from alerting.rules import RuleError, parse_duration
from alerting.runner import AlertingUnavailable
from ground.health import signal_readiness
from ground.principal import Principal, Role
from ground.settings import SettingsError
from village.commands.output import err, fail, metrics_served, out, refusals, settings_or_exit
from village.processes import start_alerting, stop_on_signals

alerts_app = typer.Typer(help="List, acknowledge and silence alerts; run the alerting service.",
                         no_args_is_help=True)
rules_app = typer.Typer(help="Check alert rule files.", no_args_is_help=True)
log = logging.getLogger("village.alerting")


def _connect() -> psycopg.Connection:


    return psycopg.connect(settings_or_exit().database_url, autocommit=True)


def _principal(name: str) -> Principal:

    # Whoever runs the CLI has the database itself: an administrator, named for the record.
    return Principal(name, Role.ADMIN)


def _when(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


@alerts_app.command("list")
def list_command(
    state: str = typer.Option("firing", help="open (firing, unacknowledged), firing, resolved, all"),
    limit: int = typer.Option(50, min=1, max=10_000),
) -> None:
    """List alerts, newest first."""

    if state not in STATE_FILTERS:
        err.print(f"--state: one of {', '.join(STATE_FILTERS)}")
        raise typer.Exit(2)
    with _connect() as conn:
        rows = list_alerts(conn, _principal("cli"), STATE_FILTERS[state], limit)
    table = Table("id", "severity", "state", "rule", "device", "place", "value", "since", "ack")
    for a in rows:
        table.add_row(str(a.alert_id), a.severity, a.state, a.rule, a.device_id or "",
                      "/".join(p for p in (a.township, a.village) if p),
                      "" if a.value is None else f"{a.value:g}", _when(a.started_at),
                      a.acknowledged_by or "")
    out.print(table)


@alerts_app.command("ack")
def ack_command(
    alert_id: int,
    by: str = typer.Option(..., help="who acknowledges (recorded)"),
    comment: str = typer.Option("", help="what is being done"),
) -> None:
    """Acknowledge an alert: its repeats and escalation stop."""

    with _connect() as conn, refusals():
        alert = acknowledge(conn, _principal(by), alert_id, comment, datetime.now(UTC))
    out.print(f"alert {alert.alert_id} acknowledged by {alert.acknowledged_by} at "
                  f"{_when(alert.acknowledged_at)}")


@alerts_app.command("silence")
def silence_command(
    match: Annotated[list[str], typer.Option("--match", help="label=value; repeat for more")],
    duration: str = typer.Option("2h", "--for", help="how long: 30m, 2h, 1d (30 days at most)"),
    by: str = typer.Option(..., help="who silences (recorded)"),
    comment: str = typer.Option(""),
    maintenance: bool = typer.Option(False, help="record it as a maintenance window"),
) -> None:
    """Mute alerts whose labels match, for a bounded time."""

    shapeless = [item for item in match if not re.fullmatch(r"[^=\s]+=.+", item)]
    if shapeless:
        raise fail(f"--match takes label=value (e.g. township=东关镇), not {shapeless[0]!r}", 2)
    matchers = dict(item.split("=", 1) for item in match)
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise fail(f"--for: {exc}", 2) from None
    now = datetime.now(UTC)
    with _connect() as conn, refusals(2):
        silence = create_silence(conn, _principal(by), matchers, now, now + timedelta(seconds=seconds),
                                 comment, now, "maintenance" if maintenance else "silence")
    out.print(f"silence {silence.id} until {_when(silence.ends_at)}: {silence.matchers}")


@alerts_app.command("silences")
def silences_command() -> None:
    """List silences in force or to come."""

    with _connect() as conn:
        rows = list_silences(conn, _principal("cli"), datetime.now(UTC))
    table = Table("id", "kind", "matchers", "from", "until", "by", "comment")
    for s in rows:
        table.add_row(str(s.id), s.kind, " ".join(f"{k}={v}" for k, v in s.matchers.items()),
                      _when(s.starts_at), _when(s.ends_at), s.created_by, s.comment)
    out.print(table)


@alerts_app.command("unsilence")
def unsilence_command(silence_id: int, by: str = typer.Option(...)) -> None:
    """End a silence now."""

    with _connect() as conn, refusals():
        expire_silence(conn, _principal(by), silence_id, datetime.now(UTC))
    out.print(f"silence {silence_id} ended")


@alerts_app.command("run")
def run_command() -> None:
    """Run the alerting service until interrupted (notifications per the routing file)."""
    settings = settings_or_exit()
    try:
        handle = start_alerting(settings)
    except (SettingsError, AlertingUnavailable, ValueError) as exc:
        err.print(f"[red]alerting:[/red] {exc}")
        raise typer.Exit(2) from None
    stop = threading.Event()
    signal_readiness(settings.ready_file, settings.database_url, [handle.alive], stop)
    metrics = metrics_served(handle.metrics.registry, settings.alerting.metrics_port,
                             "VILLAGE_ALERTING__METRICS_PORT")
    log.info("ready: %d rules, %d receivers, reading %s", len(handle.engine.book.rules),
             len(handle.engine.notifiers), settings.database_address)
    with stop_on_signals(stop):
        stop.wait()
    handle.stop()
    if metrics is not None:
        metrics.close()


@rules_app.command("check")
def check_command(file: str) -> None:
    """Validate a rules file; an error names the rule and the field."""

    try:
        rules = check_rules(Path(file).read_text(encoding="utf-8"), file)
    except (RuleError, OSError) as exc:
        err.print(f"[red]invalid:[/red] {exc}")
        raise typer.Exit(1) from None
    out.print(f"{file}: {len(rules)} rules, valid: " + ", ".join(r.name for r in rules))


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(rules_app, name="rules")
