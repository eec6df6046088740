"""The `village` command: one sub-command group per capability, each in its own module."""

from __future__ import annotations

import typer
from rich.console import Console

from ground.settings import SettingsError
from village.commands import (
    alerts,
    api,
    broadcast,
    broker,
    dashboards,
    db,
    devices,
    ingest,
    simulate,
)
from village.settings import Settings, load_settings

app = typer.Typer(
    name="village",
    help="Smart Village Telemetry: ingest, alerting, broadcast and dashboards for a county.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def village() -> None:
    """Smart Village Telemetry."""


def settings_or_exit() -> Settings:
    """Load settings, or print the one line naming the bad setting and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (idempotent; safe from several processes)."""
    from ground.migrate import MigrationError
    from ground.storage import StorageError
    from village.schema import migrate_as_configured

    settings = settings_or_exit()
    try:
        report = migrate_as_configured(settings.database_url, settings.storage, settings.retention)
    except (StorageError, MigrationError) as exc:
        console.print(f"[red]migrate failed:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"storage: {report.storage} ({report.reason})", highlight=False)
    done = ", ".join(report.applied) if report.applied else "nothing to apply"
    console.print(
        f"schema at version {report.current_version} ({report.storage} storage): {done}",
        highlight=False,
    )


for command_module in (ingest, devices, broker, simulate, alerts, broadcast, dashboards, api, db):
    command_module.register(app)


def main() -> None:
    """Entry point of the `village` console script."""
    app(prog_name="village")


if __name__ == "__main__":
    main()
