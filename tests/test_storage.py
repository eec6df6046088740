"""The storage path is chosen by whether TimescaleDB can be used, and says why in one line;
a failed migration reports its own error, never one from the cleanup."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from ground.migrate import MigrationError
from ground.migrate import migrate as run_migrations
from ground.storage import ServerFacts, StorageError, choose_storage, server_facts
from village.cli import app

NOT_INSTALLED = ServerFacts(recorded=None, available=False, preloaded=False)
INSTALLED_ONLY = ServerFacts(recorded=None, available=True, preloaded=False)
PRELOADED = ServerFacts(recorded=None, available=True, preloaded=True)


@pytest.mark.parametrize(("requested", "facts", "storage", "because"), [
    ("auto", NOT_INSTALLED, "plain", "not installed"),
    ("auto", INSTALLED_ONLY, "plain", "not in shared_preload_libraries"),
    ("auto", PRELOADED, "timescale", "preloaded"),
    ("plain", PRELOADED, "plain", "VILLAGE_STORAGE=plain"),
    ("timescale", PRELOADED, "timescale", "VILLAGE_STORAGE=timescale"),
    ("auto", ServerFacts("plain", True, True), "plain", "created with"),
    ("auto", ServerFacts("timescale", True, True), "timescale", "created with"),
    ("plain", ServerFacts("plain", False, False), "plain", "created with"),
])
def test_the_storage_taken_and_why(requested: str, facts: ServerFacts, storage: str,
                                   because: str) -> None:
    decision = choose_storage(requested, facts)  # type: ignore[arg-type]
    assert decision.storage == storage
    assert because in decision.reason and "\n" not in decision.reason


@pytest.mark.parametrize(("requested", "facts", "names"), [
    ("timescale", INSTALLED_ONLY, "shared_preload_libraries"),
    ("timescale", NOT_INSTALLED, "not installed"),
    ("timescale", ServerFacts("plain", True, True), "created with plain"),
    ("plain", ServerFacts("timescale", True, True), "created with timescale"),
    ("auto", ServerFacts("timescale", True, False), "shared_preload_libraries"),
])
def test_storage_that_cannot_be_had_fails_in_one_line(requested: str, facts: ServerFacts,
                                                      names: str) -> None:
    with pytest.raises(StorageError) as caught:
        choose_storage(requested, facts)  # type: ignore[arg-type]
    assert names in str(caught.value) and "\n" not in str(caught.value)


def test_migrate_says_in_one_line_which_storage_this_server_gives_and_why(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str,
) -> None:
    with psycopg.connect(empty_database_url) as conn:
        facts = server_facts(conn)
    expected = choose_storage("auto", facts)
    monkeypatch.setenv("VILLAGE_DATABASE_URL", empty_database_url)
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert f"storage: {expected.storage} ({expected.reason})" in result.output.splitlines()
    with psycopg.connect(empty_database_url) as conn:
        row = conn.execute("SELECT value FROM village_meta WHERE key = 'storage'").fetchone()
    assert row == (expected.storage,)


def test_asking_for_timescale_where_it_cannot_work_fails_before_any_change(
    monkeypatch: pytest.MonkeyPatch, empty_database_url: str,
) -> None:
    with psycopg.connect(empty_database_url) as conn:
        if server_facts(conn).preloaded:
            pytest.skip("TimescaleDB is preloaded on this server")
    monkeypatch.setenv("VILLAGE_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("VILLAGE_STORAGE", "timescale")
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "VILLAGE_STORAGE=timescale" in result.output
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('village_meta')").fetchone() == (None,)


def test_a_migration_that_loses_its_connection_reports_its_own_error(
    empty_database_url: str,
) -> None:
    # As TimescaleDB does when it is not preloaded: the failing statement ends the session,
    # and the advisory unlock afterwards must not replace the real cause.
    def seed(conn: psycopg.Connection) -> None:
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(MigrationError) as caught:
        run_migrations(empty_database_url, timedelta(days=30), seed=seed, storage="plain")
    message = str(caught.value)
    assert message.startswith("seeding the catalogue failed: terminating connection"), message
    assert "closed" not in message and "\n" not in message


def test_a_failing_statement_is_named_with_the_database_error(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE devices (taken_by_someone_else integer)")
    with pytest.raises(MigrationError) as caught:
        run_migrations(empty_database_url, timedelta(days=30), storage="plain")
    assert str(caught.value) == (
        'migration 0001_core failed: relation "devices" already exists')
