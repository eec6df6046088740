"""The `village` command: one sub-command group per capability, each in its own module."""

from __future__ import annotations

from typing import Annotated

import typer

from ground.storage import StorageError
from village.commands import (
    alerts,
    api,
    broadcast,
    broker,
    dashboards,
    db,
    device_commands,
    devices,
    ingest,
    simulate,
    up,
    users,
)
from village.commands.errors import CommandGroup
from village.commands.output import err, settings_or_exit
from village.logs import LogFormat, configure_logging
from village.schema import migrate_as_configured

app = typer.Typer(
    name="village",
    help="Smart Village Telemetry: ingest, alerting, broadcast and dashboards for a county.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=CommandGroup,
)


@app.callback()
def village(
    debug: Annotated[bool, typer.Option(
        "--debug", envvar="VILLAGE_DEBUG",
        help="show the traceback of a failure instead of its one line")] = False,
    log_format: Annotated[LogFormat, typer.Option(
        "--log-format", envvar="VILLAGE_LOG_FORMAT",
        help="text: one line per event; json: one object per line, for a log collector")]
    = LogFormat.TEXT,
) -> None:
    """Smart Village Telemetry."""
    configure_logging(log_format)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (idempotent; safe from several processes)."""
    settings = settings_or_exit(database=False)
    try:
        report = migrate_as_configured(settings.database_url, settings.storage, settings.retention)
    except StorageError as exc:
        err.print(f"[red]migrate failed:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    err.print(f"storage: {report.storage} ({report.reason})", highlight=False)
    done = ", ".join(report.applied) if report.applied else "nothing to apply"
    err.print(
        f"schema at version {report.current_version} ({report.storage} storage): {done}",
        highlight=False,
    )


for command_module in (ingest, up, devices, device_commands, broker, simulate, alerts, broadcast,
                       dashboards, api, users, db):
    command_module.register(app)


def main() -> None:
    """Entry point of the `village` console script."""
    app(prog_name="village")


if __name__ == "__main__":
    main()
