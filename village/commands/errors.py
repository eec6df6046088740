"""Operational failures at the CLI door: one line naming the cause and what to do.

Every `village` command runs inside `CommandGroup.invoke`, which turns an exception into
one red line and an exit status (sysexits.h numbers); `--debug` or `VILLAGE_DEBUG=1` lets
the traceback through instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors
import typer
from typer.core import TyperGroup

from ground.migrate import MigrationError, SchemaBehind, require_current_schema
from ground.mqtt import BrokerUnreachable
from ground.settings import SettingsError
from village.commands.output import err, load_with_local_stack

EXIT_SOFTWARE = 70  # a bug: the traceback is worth reporting
EXIT_UNAVAILABLE = 69  # a server is unreachable, or the database does not exist
EXIT_IOERR = 74
EXIT_NOPERM = 77  # login refused, permission denied
EXIT_CONFIG = 78  # the schema is missing or older than the code

MIGRATE = "run village migrate"
DEBUG_HINT = "run with --debug for the traceback"


@dataclass(frozen=True)
class Failure:
    """What to print, and the exit status."""

    message: str
    code: int


@dataclass(frozen=True)
class Database:
    """Where the database URL came from, for the hint (never its password)."""

    address: str
    source: str  # "VILLAGE_DATABASE_URL", "the default" or the local stack file
    url: str | None

    @property
    def fix(self) -> str:
        """What to do when the database cannot be used."""
        if self.source == "VILLAGE_DATABASE_URL":
            return "check VILLAGE_DATABASE_URL"
        if self.source == "the default":
            return ("start the local stack with village up (or bash scripts/run) in the "
                    "project directory, or set VILLAGE_DATABASE_URL")
        return f"is the village up that wrote {self.source} still running?"


def configured_database() -> Database:
    """The database the command was pointed at, described for a message."""
    try:
        settings, stack_file = load_with_local_stack()
    except SettingsError:
        return Database("the configured database", "the default", None)
    address = settings.database_address
    if stack_file is not None:
        source = str(stack_file)
    elif "database_url" in settings.model_fields_set:
        source = "VILLAGE_DATABASE_URL"
    else:
        source = "the default"
    return Database(address, source, settings.database_url)


_REFUSED_LOGIN = re.compile(
    r"password authentication failed|role \"[^\"]*\" does not exist|no pg_hba\.conf entry"
    r"|no password supplied|permission denied for database")
_MISSING_DATABASE = re.compile(r"database \"([^\"]*)\" does not exist")
_UNREACHABLE = re.compile(
    r"Connection refused|could not connect|timeout expired|could not translate host name"
    r"|No route to host|Network is unreachable|No such file or directory|Connection timed out")


def _reason(exc: BaseException) -> str:
    """The server's words, without libpq's preamble and its FATAL tag."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return re.sub(r"^.*failed: (FATAL:\s+)?", "", first)


def _connection_failure(exc: psycopg.OperationalError) -> Failure:
    db, reason = configured_database(), _reason(exc)
    if (missing := _MISSING_DATABASE.search(str(exc))) is not None:
        return Failure(f"database {missing.group(1)} does not exist at {db.address}: create it "
                       f"(createdb {missing.group(1)}), or {db.fix}", EXIT_UNAVAILABLE)
    if _REFUSED_LOGIN.search(str(exc)):
        return Failure(f"the database at {db.address} refused the login ({reason}): check the "
                       "user and password in the database URL", EXIT_NOPERM)
    if _UNREACHABLE.search(str(exc)):
        return Failure(f"cannot reach the database at {db.address} ({reason}): {db.fix}",
                       EXIT_UNAVAILABLE)
    return Failure(f"database at {db.address}: {reason}", EXIT_UNAVAILABLE)


def _undefined(exc: psycopg.Error) -> Failure:
    """A missing table, column or function: almost always a schema behind the code."""
    db = configured_database()
    try:
        if db.url is not None:
            with psycopg.connect(db.url, connect_timeout=5) as conn:
                require_current_schema(conn)
    except SchemaBehind as behind:
        return _schema_behind(behind)
    except psycopg.Error:
        pass
    return Failure(f"database: {_reason(exc)} ({DEBUG_HINT})", EXIT_SOFTWARE)


def _schema_behind(exc: SchemaBehind) -> Failure:
    db = configured_database()
    return Failure(f"the database at {db.address} {exc.what}: {MIGRATE}", EXIT_CONFIG)


def _permission(exc: psycopg.errors.InsufficientPrivilege) -> Failure:
    db = configured_database()
    return Failure(f"permission denied in the database at {db.address}: {_reason(exc)}: use a "
                   "database role with that grant", EXIT_NOPERM)


def _os_permission(exc: PermissionError) -> Failure:
    what = exc.filename or "a file"
    return Failure(f"permission denied: {what}: run as a user who may use it, or choose "
                   "another path", EXIT_NOPERM)


def _os_error(exc: OSError) -> Failure:
    what = f"{exc.filename}: " if exc.filename else ""
    return Failure(f"{what}{exc.strerror or exc}", EXIT_IOERR)


def _broker(exc: BrokerUnreachable) -> Failure:
    return Failure(f"{exc}: is the broker running? start the local stack with village up, or "
                   "set VILLAGE_MQTT_URL", EXIT_UNAVAILABLE)


def _migration(exc: MigrationError) -> Failure:
    """A migration step the database refused: told as the database's own failure."""
    cause = exc.__cause__
    if isinstance(cause, psycopg.Error):
        return explain(cause)
    return Failure(f"migrate failed: {exc}", 1)


def _database_other(exc: psycopg.Error) -> Failure:
    return Failure(f"database: {_reason(exc)} ({DEBUG_HINT})", EXIT_SOFTWARE)


# Most specific first: the first class the exception is an instance of answers.
_EXPLAIN: list[tuple[type[BaseException], Callable[[Any], Failure]]] = [
    (SchemaBehind, _schema_behind),
    (MigrationError, _migration),
    (BrokerUnreachable, _broker),
    (psycopg.errors.InsufficientPrivilege, _permission),
    (psycopg.errors.UndefinedTable, _undefined),
    (psycopg.errors.UndefinedColumn, _undefined),
    (psycopg.errors.UndefinedFunction, _undefined),
    (psycopg.errors.UndefinedObject, _undefined),
    (psycopg.OperationalError, _connection_failure),
    (psycopg.Error, _database_other),
    (PermissionError, _os_permission),
    (OSError, _os_error),
]


def explain(exc: BaseException) -> Failure:
    """The one line (and exit status) for an exception that ended a command."""
    for kind, answer in _EXPLAIN:
        if isinstance(exc, kind):
            return answer(exc)
    return Failure(f"unexpected error: {type(exc).__name__}: {_reason(exc)} ({DEBUG_HINT})",
                   EXIT_SOFTWARE)


class CommandGroup(TyperGroup):
    """The `village` program: every command's failure becomes one line (see `explain`)."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; an operational failure prints one line and exits."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            failure = explain(exc)
            err.print(f"[red]error:[/red] {failure.message}", highlight=False)
            raise typer.Exit(failure.code) from None
