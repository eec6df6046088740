"""`village api serve` and `village tokens create|list|revoke`."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
import typer
from rich.table import Table

from ground.principal import Place, Principal, Role
from ground.settings import SettingsError
from village.api.tokens import TokenError, create_token, list_tokens, parse_role, revoke_token
from village.commands.output import err, fail, out, settings_or_exit

tokens_app = typer.Typer(help="API tokens: each has a role and a scope; shown once, kept hashed.",
                         no_args_is_help=True)
api_app = typer.Typer(help="The HTTP API.", no_args_is_help=True)


def cli_principal() -> Principal:
    """The principal the CLI acts as: the admin, named after the OS user."""
    # Whoever can run the CLI on the server can read its database URL: they act as admin.
    return Principal(f"cli:{getpass.getuser()}", Role.ADMIN)


@api_app.command("serve")
def serve() -> None:
    """Serve the HTTP API (address from VILLAGE_API__HOST and VILLAGE_API__PORT)."""
    import uvicorn  # start-up cost: FastAPI, uvicorn

    from village.api.app import create_app  # start-up cost: FastAPI

    settings = settings_or_exit()
    try:
        app = create_app(settings)
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="info")


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="a unique name, e.g. the person or system")],
    role: Annotated[str, typer.Option(help="viewer, cadre, operator or admin")],
    township: Annotated[str | None, typer.Option(help="limit to this township")] = None,
    village: Annotated[str | None, typer.Option(help="limit to this village (needs --township)")] = None,
    expires_days: Annotated[float | None, typer.Option(min=0.001, help="expire after N days")] = None,
) -> None:
    """Create a token and print it once: it cannot be shown again."""


    settings = settings_or_exit()
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    try:
        with psycopg.connect(settings.database_url) as conn:
            info, secret = create_token(conn, cli_principal(), name, parse_role(role),
                                        Place(township, village), expires)
    except TokenError as exc:
        raise fail(str(exc)) from None
    where = Place(info.township, info.village).label()
    out.print(f"token {info.name} ({info.role}, {where}); keep it now, it is not stored:",
              highlight=False)
    typer.echo(secret)


@tokens_app.command("list")
def list_(all_: Annotated[bool, typer.Option("--all", help="include revoked tokens")] = False) -> None:
    """List tokens (never their secrets)."""


    settings = settings_or_exit()
    with psycopg.connect(settings.database_url) as conn:
        rows = list_tokens(conn, include_revoked=all_)
    table = Table("name", "role", "township", "village", "created", "expires", "last used", "revoked")
    for t in rows:
        table.add_row(t.name, t.role, t.township or "", t.village or "",
                      f"{t.created_at:%Y-%m-%d %H:%M}", f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "",
                      f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    out.print(table)


@tokens_app.command("revoke")
def revoke(name: str) -> None:
    """Revoke a token at once."""


    settings = settings_or_exit()
    try:
        with psycopg.connect(settings.database_url) as conn:
            revoke_token(conn, cli_principal(), name)
    except TokenError as exc:
        raise fail(str(exc)) from None
    out.print(f"token {name} revoked", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
    app.add_typer(api_app, name="api")
    app.add_typer(tokens_app, name="tokens")
