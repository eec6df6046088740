"""`village db roles`: one database login per service, each a member of its group role.

Run as the migration role (which owns the schema and may create roles) after `village
migrate`. Writes `DIR/<service>/db.env` holding that service's `VILLAGE_DATABASE_URL`, so a
service is given its own directory and nothing else. A password already in such a file is
kept; `--rotate` issues new ones. Grafana's read-only login takes its password from the
`GRAFANA_DB_PASSWORD` environment variable when that is set (Grafana reads it from its own).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
import typer

from ground.roles import READER, ensure_login, login_name
from village.commands.broker import _write_atomically as write_atomically
from village.commands.output import err, fail, settings_or_exit

# The service directory names, as docker-compose.yml gives each service its own.
SERVICE_GROUPS = {"ingest": "village_ingest", "alerting": "village_alerting",
                  "broadcast": "village_broadcast", "api": "village_api",
                  "access": "village_access"}
GRAFANA_PASSWORD_VARIABLE = "GRAFANA_DB_PASSWORD"

db_app = typer.Typer(help="Database logins of the services.", no_args_is_help=True)


def database_url_as(url: str, user: str, password: str, host: str | None = None) -> str:
    """`url` with another login (and, if given, another host:port)."""
    parts = urlsplit(url)
    where = host or parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(
        netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{where}"))


def _kept_password(path: Path, user: str) -> str | None:
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "VILLAGE_DATABASE_URL":
            parts = urlsplit(value.strip())
            if parts.username and unquote(parts.username) == user and parts.password:
                return unquote(parts.password)
    return None


@db_app.command("roles")
def roles(
    directory: Annotated[Path, typer.Option("--out", help="DIR/<service>/db.env are written")],
    host: Annotated[str | None, typer.Option(
        help="host:port the services reach the database at (default: VILLAGE_DATABASE_URL's)")
    ] = None,
    rotate: Annotated[bool, typer.Option(help="issue new passwords")] = False,
) -> None:
    """Create or update each service's login role and write its database env file."""
    settings = settings_or_exit()
    written = []
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            for service, group in SERVICE_GROUPS.items():
                env_path = directory / service / "db.env"
                kept = None if rotate else _kept_password(env_path, login_name(group))
                password = kept or secrets.token_urlsafe(24)
                login = ensure_login(conn, group, password)
                url = database_url_as(settings.database_url, login, password, host)
                env_path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(env_path, [f"# village {service}: its own database login\n",
                                            f"VILLAGE_DATABASE_URL={url}\n"], 0o600)
                written.append(login)
            grafana_password = os.environ.get(GRAFANA_PASSWORD_VARIABLE)
            if grafana_password:
                written.append(ensure_login(conn, READER, grafana_password))
    except psycopg.Error as exc:
        raise fail(f"database logins: {str(exc).strip().splitlines()[0]}") from None
    err.print(f"{directory}: logins {', '.join(written)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `village db` to the `village` program."""
    app.add_typer(db_app, name="db")
