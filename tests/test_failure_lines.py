"""Every `village` command against every operational failure: one line, the right exit status.

The conditions are real: a port nothing listens on, a database that does not exist, a role
the server refuses, a database with no schema or an older one, a role without grants, and
a broker port nothing listens on. Each command must answer in one line on stderr that names
the cause and what to do, with no traceback; `--debug` lets the traceback through.
"""

from __future__ import annotations

import shlex
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from ground.local import free_port
from ground.migrate import latest_version, load_migrations
from ground.migrate import migrate as migrate_to
from simulators.population import PopulationSpec, generate_population, write_csv
from tests.conftest import ADMIN_URL, create_database, database_url_for, drop_database
from village.cli import app
from village.commands.errors import EXIT_CONFIG, EXIT_NOPERM, EXIT_UNAVAILABLE

DB, BROKER = "database", "broker"
# The version before the newest (numbers may skip: reserved ones land later).
PREVIOUS = sorted(migration.version for migration in load_migrations())[-2]


@dataclass(frozen=True)
class Command:
    """A command line (with `{csv}`, `{dir}`, `{rules}` filled in) and what it uses."""

    args: str
    uses: frozenset[str]


def _command(args: str, *uses: str) -> Command:
    return Command(args, frozenset(uses))


COMMANDS = [
    _command("migrate", DB),
    _command("ingest", DB, BROKER),
    _command("up --broker mosquitto", DB, BROKER),
    _command("broker-config --out {dir}/broker", DB),
    _command("broker-access", DB, BROKER),
    _command("simulate --register --townships 1 --villages 1 --meters 1 --probes 0 --cameras 0"
             " --barns 0 --speakers 0", DB),
    _command("simulate --duration 1 --townships 1 --villages 1 --meters 1 --probes 0"
             " --cameras 0 --barns 0 --speakers 0 --no-progress", BROKER),
    _command("devices import {csv}", DB),
    _command("devices add wm-x1 --kind water_meter --village V --township T", DB),
    _command("devices approve wm-x2 --kind water_meter --village V --township T", DB),
    _command("devices pending", DB),
    _command("devices list", DB),
    _command("devices export", DB),
    _command("devices show wm-x1", DB),
    _command("devices retire wm-x1", DB),
    _command("devices remove wm-x1 --purge", DB),
    _command("devices rotate-secret wm-x1", DB),
    _command("devices command set_valve wm-x1 --arg open=false", DB),
    _command("devices command-report 0123456789abcdef", DB),
    _command("alerts list", DB),
    _command("alerts ack 1 --by duty", DB),
    _command("alerts silence --match township=T --by duty", DB),
    _command("alerts silences", DB),
    _command("alerts unsilence 1 --by duty", DB),
    _command("alerts run", DB),
    _command("broadcast send --county --text hello", DB),
    _command("broadcast list", DB),
    _command("broadcast show 0123456789abcdef", DB),
    _command("broadcast report 0123456789abcdef", DB),
    _command("broadcast cancel 0123456789abcdef", DB),
    _command("broadcast group all spk-1", DB),
    _command("broadcast daemon", DB, BROKER),
    _command("broadcast schedule add --name n --cron '0 7 * * *' --text hello --county", DB),
    _command("broadcast schedule list", DB),
    _command("broadcast schedule remove 1", DB),
    _command("dashboards check", DB),
    _command("api serve", DB, BROKER),
    _command("tokens create someone --role viewer", DB),
    _command("tokens list", DB),
    _command("tokens revoke someone", DB),
    _command("users create duty --role viewer --password long-enough-1", DB),
    _command("users reset duty --password long-enough-2", DB),
    _command("users enable duty", DB),
    _command("users disable duty", DB),
    _command("users list", DB),
    _command("db roles --out {dir}/roles", DB),
]
# These say what they start or make before a failure stops them.
TELL_PROGRESS = ("up", "simulate")
# These use neither the database nor the broker (Grafana, or files only).
NEITHER = {"rules check", "dashboards build", "dashboards push"}


def _leaf_commands() -> set[str]:
    names: set[str] = set()

    def walk(command: object, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            names.add(" ".join(path))
            return
        for name, child in children.items():
            walk(child, [*path, name])

    walk(typer.main.get_command(app), [])
    return names


def test_the_matrix_names_every_command() -> None:
    covered = {leaf for leaf in _leaf_commands()
               if any(f"{c.args} ".startswith(f"{leaf} ") for c in COMMANDS)}
    assert _leaf_commands() - covered == NEITHER


@dataclass(frozen=True)
class Condition:
    """A broken environment: its variables, the exit status and words the line must have."""

    env: dict[str, str]
    code: int
    words: tuple[str, ...]
    breaks: str  # DB or BROKER: which commands it concerns


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture(scope="module")
def closed_ports() -> Iterator[tuple[int, int]]:
    """Two ports held (bound, never listening) so that nothing answers there all along."""
    with socket.socket() as database, socket.socket() as broker:
        for held in (database, broker):
            held.bind(("127.0.0.1", 0))
        yield database.getsockname()[1], broker.getsockname()[1]


@pytest.fixture(scope="module")
def conditions(migrated_template: str,
               closed_ports: tuple[int, int]) -> Iterator[dict[str, Condition]]:
    tag = uuid.uuid4().hex[:8]
    closed_database, closed_broker = closed_ports
    empty = create_database(ADMIN_URL, f"village_noschema_{tag}")
    older = create_database(ADMIN_URL, f"village_older_{tag}")
    migrate_to(older, timedelta(days=730), up_to=PREVIOUS)
    current = create_database(ADMIN_URL, f"village_current_{tag}", template=migrated_template)
    role = f"village_nogrant_{tag}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    broker = "mqtt://127.0.0.1:1883"
    yield {
        "database unreachable": Condition(
            {"VILLAGE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_database}/village",
             "VILLAGE_MQTT_URL": broker},
            EXIT_UNAVAILABLE, ("cannot reach the database", "Connection refused"), DB),
        "database missing": Condition(
            {"VILLAGE_DATABASE_URL": database_url_for(ADMIN_URL, f"village_missing_{tag}"),
             "VILLAGE_MQTT_URL": broker},
            EXIT_UNAVAILABLE, (f"database village_missing_{tag} does not exist", "createdb"), DB),
        "login refused": Condition(
            {"VILLAGE_DATABASE_URL": _with_user(ADMIN_URL, f"nobody_{tag}"),
             "VILLAGE_MQTT_URL": broker},
            EXIT_NOPERM, ("refused the login", f'role "nobody_{tag}" does not exist'), DB),
        "schema missing": Condition(
            {"VILLAGE_DATABASE_URL": empty, "VILLAGE_MQTT_URL": broker},
            EXIT_CONFIG, ("has no schema", "run village migrate"), DB),
        "schema older": Condition(
            {"VILLAGE_DATABASE_URL": older, "VILLAGE_MQTT_URL": broker},
            EXIT_CONFIG, (f"schema version {PREVIOUS}, this code needs {latest_version()}",
                          "run village migrate"), DB),
        "permission denied": Condition(
            {"VILLAGE_DATABASE_URL": _with_user(current, role), "VILLAGE_MQTT_URL": broker},
            EXIT_NOPERM, ("permission denied", "grant"), DB),
        "broker unreachable": Condition(
            {"VILLAGE_DATABASE_URL": current, "VILLAGE_MQTT_URL": f"mqtt://127.0.0.1:{closed_broker}"},
            EXIT_UNAVAILABLE, ("cannot reach the MQTT broker", "Connection refused"), BROKER),
    }
    for name in (f"village_noschema_{tag}", f"village_older_{tag}", f"village_current_{tag}"):
        drop_database(ADMIN_URL, name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("failure-lines")
    spec = PopulationSpec(townships=1, villages=1, meters=2, probes=0, cameras=0, barns=0,
                          speakers=0)
    with (folder / "devices.csv").open("w", encoding="utf-8") as handle:
        write_csv(generate_population(spec), handle)
    return {"csv": str(folder / "devices.csv"), "dir": str(folder)}


def _cases() -> list[tuple[str, Command]]:
    names = ["database unreachable", "database missing", "login refused", "schema missing",
             "schema older", "permission denied", "broker unreachable"]
    return [(name, command) for name in names for command in COMMANDS]


def _run(command: Command, env: dict[str, str], files: dict[str, str],
         monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[int, str, str]:
    for variable, value in {**env, "VILLAGE_DEVELOPMENT": "true",
                            "VILLAGE_API__PORT": str(free_port())}.items():
        monkeypatch.setenv(variable, value)
    args = [part.format(**files) for part in shlex.split(command.args)]
    result = CliRunner().invoke(app, [*extra, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("condition", "command"), _cases(),
                         ids=[f"{name}: {command.args.split(' --')[0]}"
                              for name, command in _cases()])
def test_every_command_answers_every_failure_in_one_line(
        condition: str, command: Command, conditions: dict[str, Condition],
        files: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    given = conditions[condition]
    if given.breaks not in command.uses:
        pytest.skip(f"{command.args.split()[0]} does not use the {given.breaks}")
    if condition.startswith("schema") and command.args.startswith(("up", "migrate")):
        pytest.skip("it migrates: an old schema is what it fixes (see the test below)")
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = _run(command, given.env, files, monkeypatch)
    assert "Traceback" not in stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    others = [line for line in stderr.splitlines() if not line.startswith("error:")]
    if not command.args.startswith(TELL_PROGRESS):
        assert others == [], stderr
    assert all(word in errors[0] for word in given.words), errors[0]
    assert code == given.code, stderr


@pytest.mark.parametrize("up_to", [0, PREVIOUS])
def test_migrate_is_the_fix_the_line_names(
        empty_database_url: str, up_to: int, files: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    if up_to:
        migrate_to(empty_database_url, timedelta(days=730), up_to=up_to)
    env = {"VILLAGE_DATABASE_URL": empty_database_url}
    code, _, stderr = _run(_command("devices list", DB), env, files, monkeypatch)
    assert code == EXIT_CONFIG and "run village migrate" in stderr
    code, _, stderr = _run(_command("migrate", DB), env, files, monkeypatch)
    assert code == 0, stderr
    assert f"schema at version {latest_version()}" in stderr
    code, _, stderr = _run(_command("devices list", DB), env, files, monkeypatch)
    assert code == 0, stderr


def test_debug_shows_the_traceback(conditions: dict[str, Condition], files: dict[str, str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    command = _command("tokens list", DB)
    env = conditions["database missing"].env
    with pytest.raises(psycopg.OperationalError):
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        CliRunner().invoke(app, ["--debug", *command.args.split()], catch_exceptions=False)
    monkeypatch.setenv("VILLAGE_DEBUG", "1")
    result = CliRunner().invoke(app, command.args.split())
    assert isinstance(result.exception, psycopg.OperationalError)


def test_a_migration_numbered_below_the_newest_still_counts(
        database_url: str, files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # As when a reserved number lands after a newer one was applied here.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (PREVIOUS,))
    code, _, stderr = _run(_command("tokens list", DB), {"VILLAGE_DATABASE_URL": database_url},
                           files, monkeypatch)
    assert code == EXIT_CONFIG
    assert stderr.strip().endswith(f"lacks migration {PREVIOUS:04d}: run village migrate")
