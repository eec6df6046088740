"""`village broadcast ...`: send, list, show, report, cancel, groups, schedules, the daemon.

Every command calls the broadcast service and holds no logic of its own. The command line
acts as the local administrator (`cli:<user>`, county-wide): whoever can run it on the
server can reach the database directly anyway.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
import typer
from pydantic import ValidationError
from rich.table import Table

from broadcast.model import BroadcastRequest
from broadcast.schedules import create_schedule, delete_schedule, list_schedules
from broadcast.service import (
    Report,
    cancel_broadcast,
    create_broadcast,
    delivery_report,
    list_broadcasts,
    set_group,
    show_broadcast,
)
from ground.health import signal_readiness
from ground.mqtt import check_reachable
from ground.principal import Principal, Role
from ground.validation import first_error
from village.commands.output import fail, metrics_served, out, refusals, settings_or_exit
from village.processes import broadcast_daemon, stop_on_signals

broadcast_app = typer.Typer(help="Loudspeaker broadcasts: send, follow, cancel, schedule.",
                            no_args_is_help=True)
schedule_app = typer.Typer(help="Scheduled broadcasts (one-off or cron, Asia/Shanghai).",
                           no_args_is_help=True)
broadcast_app.add_typer(schedule_app, name="schedule")
log = logging.getLogger("village.broadcast")

Text = Annotated[str | None, typer.Option(help="what the speaker says (on-device TTS)")]
AudioUrl = Annotated[str | None, typer.Option("--audio-url", help="an audio file to play")]
PriorityOpt = Annotated[str, typer.Option(help="normal, alert or emergency")]
County = Annotated[bool, typer.Option("--county", help="every speaker of the county")]
Township = Annotated[str | None, typer.Option(help="every speaker of a township")]
VillageOpt = Annotated[str | None, typer.Option("--village", help="TOWNSHIP/VILLAGE")]
Speakers = Annotated[list[str] | None, typer.Option("--speaker", help="a speaker (repeatable)")]
Group = Annotated[str | None, typer.Option(help="a named speaker group")]
Volume = Annotated[int | None, typer.Option("--volume", help="volume, percent")]
Repeat = Annotated[int, typer.Option(help="how many times to play it")]
ExpiresIn = Annotated[int | None, typer.Option("--expires-in", help="seconds (default 3600)")]


def _principal() -> Principal:

    return Principal(f"cli:{getpass.getuser()}", Role.ADMIN)



@contextlib.contextmanager
def _connection() -> Iterator[psycopg.Connection]:
    """A connection whose service refusals become one red line and exit status 1."""

    settings = settings_or_exit()
    try:
        with refusals(), psycopg.connect(settings.database_url) as conn:
            yield conn
    except ValidationError as exc:
        raise fail(first_error(exc, "request")) from None


def _request(text: str | None, audio_url: str | None, priority: str, county: bool,
             township: str | None, village: str | None, speakers: list[str] | None,
             group: str | None, volume: int | None, repeat: int,
             expires_in: int | None) -> BroadcastRequest:

    scopes: dict[str, Any] = {
        "county": {"kind": "county"} if county else None,
        "township": {"kind": "township", "township": township} if township else None,
        "village": _village_scope(village) if village else None,
        "speaker": {"kind": "speakers", "speakers": speakers} if speakers else None,
        "group": {"kind": "group", "group": group} if group else None,
    }
    chosen = [scope for scope in scopes.values() if scope is not None]
    if len(chosen) != 1:
        raise fail("give exactly one of --county, --township, --village, --speaker, --group")
    return BroadcastRequest.model_validate({
        "scope": chosen[0], "text": text, "audio_url": audio_url, "priority": priority,
        "volume_pct": volume, "repeat": repeat, "expires_in_s": expires_in})


def _village_scope(value: str) -> dict[str, str]:
    township, _, village = value.partition("/")
    if not township or not village:
        raise fail("--village takes TOWNSHIP/VILLAGE")
    return {"kind": "village", "township": township, "village": village}


def _print_report(report: Report, speakers: bool = True) -> None:
    counts = ", ".join(f"{state} {n}" for state, n in report.counts.items()) or "no speakers"
    ended = f" at {report.completed_at:%Y-%m-%d %H:%M:%S%z}" if report.completed_at else ""
    out.print(f"{report.broadcast_id}  {report.priority}  {report.scope_label}  {report.status}"
              f"{ended}  confirmed {report.confirmed}/{report.speakers}  ({counts})", highlight=False)
    if speakers and report.unconfirmed:
        table = Table("speaker", "township", "village", "state", "reason", "attempts")
        for row in report.unconfirmed:
            table.add_row(row["device_id"], row["township"] or "", row["village"] or "",
                          row["state"], row["reason"] or "", str(row["attempts"]))
        out.print(f"{len(report.unconfirmed)} speaker(s) did not confirm:")
        out.print(table)


@broadcast_app.command()
def send(text: Text = None, audio_url: AudioUrl = None, priority: PriorityOpt = "normal",
         county: County = False, township: Township = None, village: VillageOpt = None,
         speaker: Speakers = None, group: Group = None, volume: Volume = None,
         repeat: Repeat = 1, expires_in: ExpiresIn = None) -> None:
    """Send a broadcast; the delivery daemon delivers it (see `report`)."""

    with _connection() as conn:
        request = _request(text, audio_url, priority, county, township, village, speaker, group,
                           volume, repeat, expires_in)
        broadcast_id = create_broadcast(conn, request, _principal(), datetime.now(UTC))
    out.print(broadcast_id, highlight=False)


@broadcast_app.command("list")
def list_(limit: Annotated[int, typer.Option(help="at most this many")] = 50) -> None:
    """The newest broadcasts with their counts per state."""

    with _connection() as conn:
        for report in list_broadcasts(conn, _principal(), datetime.now(UTC), limit):
            _print_report(report, speakers=False)


@broadcast_app.command()
def show(broadcast_id: str) -> None:
    """A broadcast as recorded, and its delivery report."""

    with _connection() as conn:
        detail = show_broadcast(conn, broadcast_id, _principal(), datetime.now(UTC))
    row = detail.broadcast
    out.print(f"sent by {row.created_by} ({row.creator_role}) at {row.created_at:%Y-%m-%d %H:%M:%S%z},"
              f" expires {row.expires_at:%Y-%m-%d %H:%M:%S%z}", highlight=False)
    out.print(f"what: {row.text if row.text is not None else row.audio_url}"
              f"  (volume {row.volume_pct if row.volume_pct is not None else 'default'},"
              f" repeat {row.repeat})", highlight=False)
    if row.cancelled_at:
        out.print(f"cancelled by {row.cancelled_by} at {row.cancelled_at:%Y-%m-%d %H:%M:%S%z}",
                  highlight=False)
    _print_report(detail.report)


@broadcast_app.command()
def report(broadcast_id: str) -> None:
    """Counts per state and the speakers that did not confirm."""

    with _connection() as conn:
        _print_report(delivery_report(conn, broadcast_id, _principal(), datetime.now(UTC)))


@broadcast_app.command()
def cancel(broadcast_id: str) -> None:
    """Cancel a broadcast; speakers that were sent it get `stop`."""

    with _connection() as conn:
        _print_report(cancel_broadcast(conn, broadcast_id, _principal(), datetime.now(UTC)))


@broadcast_app.command()
def group(name: str, speakers: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Define a named speaker group (no speakers: delete it)."""

    with _connection() as conn:
        set_group(conn, name, speakers or [], _principal(), datetime.now(UTC))
    out.print(f"group {name}: {len(speakers or [])} speaker(s)", highlight=False)


@schedule_app.command("add")
def schedule_add(
    name: Annotated[str, typer.Option(help="what to call it")],
    cron: Annotated[str | None, typer.Option(help='five crontab fields, e.g. "0 7 * * *"')] = None,
    at: Annotated[datetime | None, typer.Option(
        help="once, at this time (ISO 8601; no offset: Asia/Shanghai)",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"])] = None,
    tz: Annotated[str, typer.Option("--tz", help="the schedule's time zone")] = "Asia/Shanghai",
    text: Text = None, audio_url: AudioUrl = None, priority: PriorityOpt = "normal",
    county: County = False, township: Township = None, village: VillageOpt = None,
    speaker: Speakers = None, group: Group = None, volume: Volume = None, repeat: Repeat = 1,
    expires_in: ExpiresIn = None,
) -> None:
    """Schedule a broadcast, once (`--at`) or recurring (`--cron`)."""


    with _connection() as conn:
        request = _request(text, audio_url, priority, county, township, village, speaker, group,
                           volume, repeat, expires_in)
        when = at.replace(tzinfo=ZoneInfo(tz)) if at and at.tzinfo is None else at
        schedule_id = create_schedule(conn, request, _principal(), datetime.now(UTC), name=name,
                                      cron=cron, at=when, timezone=tz)
    out.print(f"schedule {schedule_id}", highlight=False)


@schedule_app.command("list")
def schedule_list() -> None:
    """The schedules and when each fires next."""


    with _connection() as conn:
        rows = list_schedules(conn, _principal())
    for row in rows:
        zone = ZoneInfo(row.timezone)
        when = f"cron {row.cron}" if row.cron else f"at {_local(row.run_at, zone)}"
        following = _local(row.next_fire_at, zone) if row.next_fire_at else "nothing more"
        last = f"  last {row.last_broadcast_id}" if row.last_broadcast_id else ""
        out.print(f"{row.schedule_id}  {row.name}  {when} ({row.timezone})  next {following}"
                  f"{last}", highlight=False)


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat() if moment else ""


@schedule_app.command("remove")
def schedule_remove(schedule_id: int) -> None:
    """Stop a schedule (kept in the audit trail)."""

    with _connection() as conn:
        delete_schedule(conn, schedule_id, _principal(), datetime.now(UTC))
    out.print(f"schedule {schedule_id} removed", highlight=False)


@broadcast_app.command()
def daemon() -> None:
    """Run the delivery daemon in the foreground until interrupted."""
    settings = settings_or_exit()
    check_reachable(settings.mqtt)  # fail now, not in the daemon thread
    handle = broadcast_daemon(settings).start()
    metrics = metrics_served(handle.metrics.registry, settings.broadcast.metrics_port,
                             "VILLAGE_BROADCAST__METRICS_PORT")
    done = threading.Event()
    signal_readiness(settings.ready_file, settings.database_url, [handle.ready.is_set], done)
    try:
        with stop_on_signals(done):
            while not handle.ready.wait(0.2):
                if done.is_set():
                    return
            log.info("ready: client %s on %r, prefix %r, database %s", handle.client_id,
                     settings.mqtt, settings.topic_prefix, settings.database_address)
            done.wait()
    finally:
        handle.stop()
        if metrics is not None:
            metrics.close()


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
    app.add_typer(broadcast_app, name="broadcast")
