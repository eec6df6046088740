"""`village devices command ...` and `village devices command-report ...`: device commands.

Both call the command service and hold no logic of their own; the command line acts as the
local administrator (`cli:<user>`, county-wide), as `village broadcast` does.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from broadcast import command_store
from broadcast.command_service import DEFAULT_EXPIRY, CommandRequest, send_command
from broadcast.device_command import CommandDenied, CommandError
from ground.principal import Principal, Role
from village.commands.devices import devices_app, registry_connection
from village.commands.output import err, fail, out

Filter = Annotated[str | None, typer.Option()]


def _args(pairs: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise fail(f"--arg {pair!r}: write NAME=VALUE, e.g. open=false", 2)
        parsed[name] = value
    return parsed


def command(
    op: Annotated[str, typer.Argument(help="the op, as the device's kind declares it: set_valve")],
    device_ids: Annotated[list[str] | None, typer.Argument(help="devices (or select below)")] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="NAME=VALUE, e.g. open=false")] = None,
    why: Annotated[str, typer.Option(help="why it is sent (kept with the command)")] = "",
    kind: Filter = None, township: Filter = None, village: Filter = None, grid: Filter = None,
    site: Filter = None,
    expires_in: Annotated[int, typer.Option("--expires-in", help="seconds")] = int(
        DEFAULT_EXPIRY.total_seconds()),
) -> None:
    """Send a command to devices (named, or every one matching the filters); prints its id."""
    filters = {name: value for name, value in (("kind", kind), ("township", township),
               ("village", village), ("grid", grid), ("site", site)) if value is not None}
    request = CommandRequest(op=op, why=why, args=_args(arg or []),
                             device_ids=device_ids or None, filters=filters,
                             expires_in=timedelta(seconds=expires_in))
    principal = Principal(f"cli:{getpass.getuser()}", Role.ADMIN)
    with registry_connection() as conn:
        try:
            command_id = send_command(conn, principal, request, datetime.now(UTC))
        except (CommandError, CommandDenied) as exc:
            raise fail(f"{exc}; nothing sent") from None
        devices = sum(command_store.report(conn, command_id)["counts"].values())
    err.print(f"{op} sent to {devices} devices; follow it with"
              f" `village devices command-report {command_id}`", highlight=False)
    typer.echo(command_id)


def command_report(command_id: str) -> None:
    """Each device's state for a command (sent, accepted, done, rejected with the reason...)."""
    with registry_connection() as conn:
        row = command_store.fetch_command(conn, command_id)
        if row is None:
            raise fail(f"no command {command_id!r}")
        report = command_store.report(conn, command_id)
    out.print(f"{row.op} {row.args} to {row.selection}, by {row.created_by} at"
              f" {row.created_at:%Y-%m-%d %H:%M:%S}: {row.why}", highlight=False, markup=False)
    out.print("  ".join(f"{state} {n}" for state, n in sorted(report["counts"].items())),
              highlight=False)
    table = Table("device_id", "state", "reason", "attempts")
    for device in report["devices"]:
        table.add_row(device["device_id"], device["state"], device["reason"] or "",
                      str(device["attempts"]))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add `command` and `command-report` to `village devices`."""
    devices_app.command("command")(command)
    devices_app.command("command-report")(command_report)
