"""Console accounts: argon2 hashes, lock-out after repeated failures, disable and reset end
sessions, every change audited; the CLI manages them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from ground.principal import SYSTEM, Place, Role
from village.cli import app
from village.console.accounts import (
    AccountError,
    create_user,
    disable_user,
    lock_until,
    reset_password,
    sign_in,
)
from village.console.sessions import find_session, start_session

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LOCK = timedelta(minutes=15)
PASSWORD = "correct horse battery"


@pytest.mark.parametrize(("failures", "locked"), [(0, False), (4, False), (5, True), (9, True)])
def test_an_account_locks_at_the_failure_limit(failures: int, locked: bool) -> None:
    assert (lock_until(failures, 5, LOCK, NOW) == NOW + LOCK) is locked


def test_the_password_is_stored_only_as_an_argon2_hash(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        user = create_user(conn, SYSTEM, "li.wei", PASSWORD, Role.CADRE, Place("east", "east-1"))
        stored = conn.execute("SELECT password_hash FROM console_users").fetchone()
        result = sign_in(conn, "li.wei", PASSWORD, NOW, 5, LOCK)
    assert stored is not None and stored[0].startswith("$argon2id$")
    assert PASSWORD not in stored[0]
    assert result.user is not None and result.user.principal.scope == Place("east", "east-1")
    assert user.principal.name == "user:li.wei" and user.principal.role is Role.CADRE


def test_repeated_wrong_passwords_lock_even_the_right_one_out(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_user(conn, SYSTEM, "li.wei", PASSWORD, Role.CADRE, Place("east"))
        refusals = [sign_in(conn, "li.wei", "wrong password!", NOW, 3, LOCK).refusal
                    for _ in range(3)]
        during = sign_in(conn, "li.wei", PASSWORD, NOW + timedelta(minutes=14), 3, LOCK)
        after = sign_in(conn, "li.wei", PASSWORD, NOW + timedelta(minutes=16), 3, LOCK)
        audited = conn.execute("SELECT action FROM api_audit ORDER BY id").fetchall()
    assert refusals == ["wrong", "wrong", "locked"]
    assert during.refusal == "locked" and during.locked_until == NOW + LOCK
    assert after.user is not None
    assert ("user.locked",) in audited


def test_an_unknown_name_and_a_disabled_user_are_refused_alike(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_user(conn, SYSTEM, "gone", PASSWORD, Role.VIEWER, Place())
        disable_user(conn, SYSTEM, "gone")
        assert sign_in(conn, "nobody", PASSWORD, NOW, 5, LOCK).refusal == "wrong"
        assert sign_in(conn, "gone", PASSWORD, NOW, 5, LOCK).refusal == "wrong"


def test_disabling_or_resetting_ends_the_users_sessions(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        user = create_user(conn, SYSTEM, "wang", PASSWORD, Role.OPERATOR, Place("east"))
        first, _ = start_session(conn, user, NOW, timedelta(hours=1))
        reset_password(conn, SYSTEM, "wang", "another long password")
        assert find_session(conn, first, NOW) is None
        assert sign_in(conn, "wang", PASSWORD, NOW, 5, LOCK).refusal == "wrong"
        second, _ = start_session(conn, user, NOW, timedelta(hours=1))
        assert find_session(conn, second, NOW) is not None
        assert find_session(conn, second, NOW + timedelta(hours=2)) is None  # expired
        disable_user(conn, SYSTEM, "wang")
        assert find_session(conn, second, NOW) is None
        actions = conn.execute("SELECT action, target FROM api_audit ORDER BY id").fetchall()
    assert actions == [("user.create", "user:wang"), ("user.reset_password", "user:wang"),
                       ("user.disable", "user:wang")]


@pytest.mark.parametrize(("role", "scope", "password", "message"), [
    (Role.CADRE, Place(None, "east-1"), PASSWORD, "needs its township"),
    (Role.ADMIN, Place("east"), PASSWORD, "whole county"),
    (Role.VIEWER, Place(), "short", "at least 10"),
])
def test_bad_users_are_refused(database_url: str, role: Role, scope: Place, password: str,
                               message: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(AccountError, match=message):
        create_user(conn, SYSTEM, "x", password, role, scope)


def test_the_cli_creates_lists_disables_and_resets_users(database_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    runner = CliRunner()
    created = runner.invoke(app, ["users", "create", "zhao", "--role", "operator",
                                  "--township", "east", "--password", PASSWORD])
    assert created.exit_code == 0, created.output
    assert "zhao (operator, east) created" in created.output
    duplicate = runner.invoke(app, ["users", "create", "zhao", "--role", "viewer",
                                    "--password", PASSWORD])
    assert duplicate.exit_code == 1 and "exists already" in duplicate.output
    assert runner.invoke(app, ["users", "reset", "zhao"],
                         input="a brand new password\na brand new password\n").exit_code == 0
    assert runner.invoke(app, ["users", "disable", "zhao"]).exit_code == 0
    listed = runner.invoke(app, ["users", "list"])
    assert "zhao" in listed.output and "disabled" in listed.output
    with psycopg.connect(database_url) as conn:
        actors = conn.execute("SELECT DISTINCT actor FROM api_audit").fetchall()
    assert len(actors) == 1 and actors[0][0].startswith("cli:")
