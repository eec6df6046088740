"""`village devices ...`: the registry, through the devices service (devices.service).

The command line acts as the local administrator (`cli:<user>`, county-wide): whoever can
run it on the server can reach the database directly anyway."""

from __future__ import annotations

import contextlib
import csv
import getpass
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated

import psycopg
import typer
from rich.table import Table

from broadcast.command_store import last_valve
from devices import service
from devices.registry import DeviceInvalid, DeviceRecord, ImportRefused
from devices.registry_csv import format_registry_csv
from ground.principal import Principal, Role
from village.commands.output import err, fail, out, refusals, settings_or_exit

devices_app = typer.Typer(help="The device registry: import, list, retire, secrets, approval.",
                          no_args_is_help=True)

TABLE_LIMIT = 200

# Shared options of the commands that describe a device's place.
Kind = Annotated[str, typer.Option(help="the device kind, e.g. water_meter")]
Village = Annotated[str, typer.Option(help="the administrative village")]
Township = Annotated[str | None, typer.Option(help="the township")]
Grid = Annotated[str | None, typer.Option(help="the grid (villager group)")]
Site = Annotated[str | None, typer.Option(help="the site, e.g. a pumping station")]
Name = Annotated[str | None, typer.Option(help="a human name")]
Latitude = Annotated[str | None, typer.Option(help="WGS84 latitude")]
Longitude = Annotated[str | None, typer.Option(help="WGS84 longitude")]
Installed = Annotated[str | None, typer.Option("--installed-on", help="YYYY-MM-DD")]
Gateway = Annotated[str | None, typer.Option("--gateway", help="the gateway that carries it")]
Tags = Annotated[str | None, typer.Option(help="key=value;key=value or a JSON object")]
Filter = Annotated[str | None, typer.Option()]


def _principal() -> Principal:

    return Principal(f"cli:{getpass.getuser()}", Role.ADMIN)


@contextlib.contextmanager
def registry_connection() -> Iterator[psycopg.Connection]:
    """A connection to the configured database; a refusal or connection error ends the command."""


    settings = settings_or_exit()
    try:
        with refusals(), psycopg.connect(settings.database_url, autocommit=True) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise fail(f"database: {str(exc).strip().splitlines()[0]}") from None


def _given(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


@contextlib.contextmanager
def _private_file(path: Path | None) -> Iterator[IO[str] | None]:
    """A new file only we can read; removed again if what it was written for fails."""
    if path is None:
        yield None
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise fail(f"{path} exists; secrets are written once, to a new file") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@devices_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a registry CSV")],
    skip_invalid: Annotated[bool, typer.Option(help="import the good rows of a file with bad ones")] = False,
    secrets_out: Annotated[Path | None, typer.Option(help="write new secrets here (a new file)")] = None,
) -> None:
    """Validate every row, then add new devices and update known ones in place."""

    def keep(secrets: list[tuple[str, str]]) -> None:
        assert secrets_file is not None
        writer = csv.writer(secrets_file, lineterminator="\n")
        writer.writerow(("device_id", "secret"))
        writer.writerows(secrets)
        # On disk before the commit: a secret is never stored only as a hash.
        secrets_file.flush()
        os.fsync(secrets_file.fileno())

    with registry_connection() as conn, _private_file(secrets_out) as secrets_file:
        try:
            result = service.import_registry(conn, _principal(), file.read_bytes(),
                                     skip_invalid=skip_invalid, source="import",
                                     issue_secrets=secrets_file is not None,
                                     keep=keep if secrets_file is not None else None)
        except ImportRefused as exc:
            for problem in exc.problems:
                err.print(f"{file}: {problem}", highlight=False, markup=False)
            raise fail(f"{len(exc.problems)} problems; nothing imported"
                       " (fix them, or --skip-invalid to import the good rows)") from None
        except DeviceInvalid as exc:  # the file as a whole
            raise fail(f"{file}: {exc}") from None
    for problem in result.problems:
        err.print(f"{file}: {problem}", highlight=False, markup=False)
    skipped = f", {len(result.problems)} problems skipped" if result.problems else ""
    err.print(f"{result.created} added, {result.updated} updated, {result.unchanged} unchanged"
              f"{skipped}", highlight=False)
    if secrets_out is not None:
        err.print(f"{len(result.secrets)} new secrets written to {secrets_out}; they are not"
                  " stored anywhere else", highlight=False)
    elif result.without_secret:
        err.print(f"{len(result.without_secret)} devices have no secret yet: import with"
                  " --secrets-out, or `village devices rotate-secret`", highlight=False)


def _registering(verb: str, done: str, help_text: str) -> Callable[..., None]:
    """The `add` or `approve` command: both take a device's kind and place, both print a secret."""

    def command(device_id: str, kind: Kind, village: Village, township: Township = None,
                grid: Grid = None, site: Site = None, name: Name = None,
                latitude: Latitude = None, longitude: Longitude = None,
                installed_on: Installed = None, gateway: Gateway = None,
                tags: Tags = None) -> None:

        fields = _given(device_id=device_id, kind=kind, village=village, township=township,
                        grid=grid, site=site, name=name, latitude=latitude,
                        longitude=longitude, installed_on=installed_on, tags=tags,
                        gateway_id=gateway)
        with registry_connection() as conn:
            if verb == "add":
                secret = service.register(conn, _principal(), fields, source="add")
            else:
                secret = service.approve(conn, _principal(), fields)
        err.print(f"{device_id} {done}; its secret, shown this once:", highlight=False)
        typer.echo(secret)

    command.__doc__ = help_text
    return command


devices_app.command("add")(_registering(
    "add", "registered", "Register one device and print its secret once."))
devices_app.command("approve")(_registering(
    "approve", "approved",
    "Register a pending (discovered) device with its kind and place; print its secret once."))


@devices_app.command("pending")
def pending() -> None:
    """Unknown devices heard in discovery mode, waiting for `approve`."""


    with registry_connection() as conn:
        rows = service.pending(conn, _principal())
    table = Table("device_id", "first seen", "last seen", "messages", "last topic")
    for p in rows:
        table.add_row(p.device_id, f"{p.first_seen:%Y-%m-%d %H:%M}" if p.first_seen else "",
                      f"{p.last_seen:%Y-%m-%d %H:%M}" if p.last_seen else "",
                      str(p.messages or 0), p.last_topic or "")
    out.print(table)


def _print_records(records: list[DeviceRecord], output: str, total: int) -> None:

    if output == "json":
        typer.echo(json.dumps([r.as_dict() for r in records], ensure_ascii=False, indent=1))
        return
    if output == "csv":
        fields = list(records[0].as_dict()) if records else []
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r.as_dict(), "tags": json.dumps(r.row.tags, ensure_ascii=False)}
                         for r in records)
        typer.echo(buffer.getvalue(), nl=False)
        return
    table = Table("device_id", "kind", "name", "township", "village", "grid", "site",
                  "gateway", "lifecycle", "secret")
    for r in records:
        table.add_row(r.row.device_id, r.row.kind, r.row.name or "", r.row.township or "",
                      r.row.village, r.row.grid or "", r.row.site or "", r.row.gateway_id or "",
                      r.lifecycle, "yes" if r.has_secret else "no")
    out.print(table)
    if total > len(records):
        err.print(f"{len(records)} of {total} shown (--limit, or --format csv for all)",
                  highlight=False)


@devices_app.command("list")
def list_(kind: Filter = None, township: Filter = None, village: Filter = None,
          grid: Filter = None, site: Filter = None, lifecycle: Filter = None,
          gateway: Filter = None,
          output: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
          limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
          ) -> None:
    """List devices matching every filter given."""

    if output not in ("table", "csv", "json"):
        raise fail("--format must be table, csv or json", 2)
    filters = _given(kind=kind, township=township, village=village, grid=grid, site=site,
                     lifecycle=lifecycle, gateway_id=gateway)
    shown = limit if limit is not None or output != "table" else TABLE_LIMIT
    with registry_connection() as conn:
        found = list(service.records(conn, _principal(), filters, shown))
        total = service.count(conn, _principal(), filters) if output == "table" else len(found)
    _print_records(found, output, total)


@devices_app.command("export")
def export(kind: Filter = None, township: Filter = None, village: Filter = None,
           grid: Filter = None, site: Filter = None, lifecycle: Filter = None,
           gateway: Filter = None,
           to: Annotated[Path | None, typer.Option("--out", help="a file (default stdout)")] = None,
           ) -> None:
    """Write the registry (or the matching part) as a CSV file that `import` reads back."""

    filters = _given(kind=kind, township=township, village=village, grid=grid, site=site,
                     lifecycle=lifecycle, gateway_id=gateway)
    with registry_connection() as conn:
        text = format_registry_csv(record.row for record in service.records(conn, _principal(), filters))
    if to is None:
        typer.echo(text, nl=False)
    else:
        to.write_text(text, encoding="utf-8")


@devices_app.command("show")
def show(device_id: str) -> None:
    """Everything the registry knows about one device, with its latest changes."""

    with registry_connection() as conn:
        record, status, changes = service.history(conn, _principal(), device_id)
        valve = last_valve(conn, device_id)
    if valve is not None:  # as the meter last reported it
        status |= {"valve_open": valve[0], "valve_seen_at": valve[1]}
    for key, value in (record.as_dict() | status).items():
        out.print(f"{key:>13}: {'' if value is None else value}", highlight=False, markup=False)
    for at, action, actor, detail in changes:
        out.print(f"{at:%Y-%m-%d %H:%M:%S} {action} by {actor} {json.dumps(detail)}",
                  highlight=False, markup=False)


@devices_app.command("retire")
def retire(device_id: str) -> None:
    """Retire a device: history kept, its messages refused, its broker login dropped."""

    with registry_connection() as conn:
        service.retire(conn, _principal(), device_id)
    err.print(f"{device_id} retired; its broker login goes within seconds with live access,"
              " else at `village broker-config --reload`", highlight=False)


@devices_app.command("remove")
def remove(device_id: str,
           purge: Annotated[bool, typer.Option(help="required: also delete its history")] = False,
           yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Delete a device and all its readings, events and dead letters (retire keeps them)."""

    if not purge:
        raise fail("remove deletes the device's whole history: say --purge, or use retire", 2)
    with registry_connection() as conn:
        service.record(conn, _principal(), device_id)
        if not yes and not typer.confirm(f"Delete {device_id} and all its history?"):
            raise fail("nothing deleted")
        deleted = service.remove(conn, _principal(), device_id)
    err.print(f"{device_id} removed: " + ", ".join(f"{n} {t}" for t, n in deleted.items()),
              highlight=False)


@devices_app.command("rotate-secret")
def rotate(device_id: str) -> None:
    """Issue a new secret and print it once; the old one stops working within seconds with
    live access, else when the broker reloads."""

    with registry_connection() as conn:
        secret = service.rotate_secret(conn, _principal(), device_id)
    err.print(f"new secret for {device_id}, shown this once (without live access, then"
              " `village broker-config --reload`):", highlight=False)
    typer.echo(secret)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
    app.add_typer(devices_app, name="devices")
