"""`village users create|list|disable|enable|reset`: the people who sign in to the console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import psycopg
import typer
from rich.table import Table

from ground.principal import Place
from village.api.tokens import TokenError, parse_role
from village.commands.api import cli_principal
from village.commands.output import fail, out, settings_or_exit
from village.console import accounts

users_app = typer.Typer(help="Console users: each has a role and a scope, like API tokens.",
                        no_args_is_help=True)
Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                       help="at least 10 characters (asked for if not given)")]


def _run(change: Callable[..., None], name: str, *args: str) -> None:
    settings = settings_or_exit()
    try:
        with psycopg.connect(settings.database_url) as conn:
            change(conn, cli_principal(), name, *args)
    except accounts.AccountError as exc:
        raise fail(str(exc)) from None


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="the sign-in name")],
    role: Annotated[str, typer.Option(help="viewer, cadre, operator or admin")],
    password: Password,
    township: Annotated[str | None, typer.Option(help="limit to this township")] = None,
    village: Annotated[str | None, typer.Option(help="limit to this village (needs --township)")] = None,
    display_name: Annotated[str, typer.Option(help="the person's name as pages show it")] = "",
) -> None:
    """Create a console user."""
    settings = settings_or_exit()
    try:
        with psycopg.connect(settings.database_url) as conn:
            user = accounts.create_user(conn, cli_principal(), name, password, parse_role(role),
                                        Place(township, village), display_name)
    except (accounts.AccountError, TokenError) as exc:
        raise fail(str(exc)) from None
    out.print(f"user {user.name} ({user.role}, {Place(user.township, user.village).label()})"
              " created", highlight=False)


@users_app.command("list")
def list_() -> None:
    """List console users."""
    settings = settings_or_exit()
    with psycopg.connect(settings.database_url) as conn:
        rows = accounts.list_users(conn)
    table = Table("name", "display name", "role", "scope", "last sign-in", "state")
    for u in rows:
        state = "disabled" if u.disabled_at else ("locked" if u.locked_until else "active")
        table.add_row(u.name, u.display_name, u.role, Place(u.township, u.village).label(),
                      f"{u.last_sign_in_at:%Y-%m-%d %H:%M}" if u.last_sign_in_at else "", state)
    out.print(table)


@users_app.command("disable")
def disable(name: str) -> None:
    """Disable a user at once (their sessions end)."""
    _run(accounts.disable_user, name)
    out.print(f"user {name} disabled", highlight=False)


@users_app.command("enable")
def enable(name: str) -> None:
    """Let a disabled user sign in again."""
    _run(accounts.enable_user, name)
    out.print(f"user {name} enabled", highlight=False)


@users_app.command("reset")
def reset(name: str, password: Password) -> None:
    """Set a new password (clears a lock, ends the user's sessions)."""
    _run(accounts.reset_password, name, password)
    out.print(f"password of {name} reset", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
    app.add_typer(users_app, name="users")
