"""Tokens: shown once, stored hashed, revocable, expiring, audited; the CLI manages them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from ground.principal import SYSTEM, Place, Role
from tests.broadcast.registry import register_speakers
from village.api.tokens import (
    TokenError,
    authenticate,
    create_token,
    list_tokens,
    revoke_token,
    token_hash,
)
from village.cli import app


def test_a_token_is_stored_only_as_its_hash(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        info, secret = create_token(conn, SYSTEM, "alice", Role.CADRE, Place("east", "east-1"))
        stored = conn.execute("SELECT token_hash FROM api_tokens").fetchall()
        dump = conn.execute("SELECT row_to_json(t)::text FROM api_tokens t").fetchone()
        principal = authenticate(conn, secret)
    assert stored == [(token_hash(secret),)]
    assert dump is not None and secret not in dump[0]
    assert principal is not None
    assert (principal.role, principal.scope) == (Role.CADRE, Place("east", "east-1"))
    assert info.role == "cadre"


def test_revoked_expired_and_unknown_tokens_are_refused(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        _, live = create_token(conn, SYSTEM, "live", Role.VIEWER, Place())
        _, revoked = create_token(conn, SYSTEM, "gone", Role.VIEWER, Place())
        _, expired = create_token(conn, SYSTEM, "old", Role.VIEWER, Place(),
                                  datetime.now(UTC) - timedelta(seconds=1))
        revoke_token(conn, SYSTEM, "gone")
        assert authenticate(conn, live) is not None
        assert authenticate(conn, revoked) is None
        assert authenticate(conn, expired) is None
        assert authenticate(conn, live + "x") is None
        assert [t.name for t in list_tokens(conn)] == ["live", "old"]
        assert [t.name for t in list_tokens(conn, include_revoked=True)] == ["live", "gone", "old"]


@pytest.mark.parametrize("name, role, scope, message", [
    ("dup", Role.VIEWER, Place(), "exists already"),
    ("bad name!", Role.VIEWER, Place(), "1 to 64 characters"),
    ("v", Role.VIEWER, Place(None, "east-1"), "needs its township"),
])
def test_bad_token_requests_say_why(database_url: str, name: str, role: Role, scope: Place,
                                    message: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_token(conn, SYSTEM, "dup", Role.VIEWER, Place())
        with pytest.raises(TokenError, match=message):
            create_token(conn, SYSTEM, name, role, scope)


def test_every_token_change_is_audited(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_token(conn, SYSTEM, "bob", Role.OPERATOR, Place("west"))
        revoke_token(conn, SYSTEM, "bob")
        with pytest.raises(TokenError):
            revoke_token(conn, SYSTEM, "bob")
        rows = conn.execute(
            "SELECT actor, action, target, township FROM api_audit ORDER BY id").fetchall()
    assert rows == [("system", "token.create", "token:bob", "west"),
                    ("system", "token.revoke", "token:bob", "west")]


def test_cli_creates_lists_and_revokes(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    register_speakers(database_url, [("spk-1", "east", "east-1")])
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    runner = CliRunner()
    created = runner.invoke(app, ["tokens", "create", "carol", "--role", "cadre",
                                  "--township", "east", "--village", "east-1"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    with psycopg.connect(database_url) as conn:
        principal = authenticate(conn, secret)
    assert principal is not None and principal.scope == Place("east", "east-1")
    listed = runner.invoke(app, ["tokens", "list"])
    assert "carol" in listed.output and secret not in listed.output
    assert runner.invoke(app, ["tokens", "create", "x", "--role", "king"]).exit_code == 1
    assert runner.invoke(app, ["tokens", "revoke", "carol"]).exit_code == 0
    assert runner.invoke(app, ["tokens", "revoke", "carol"]).exit_code == 1
    with psycopg.connect(database_url) as conn:
        assert authenticate(conn, secret) is None


@pytest.mark.parametrize(("place", "message"), [
    (["--township", "东关镇"], "no device of the registry is in township '东关镇' (townships: east)"),
    (["--township", "east", "--village", "西村"], "no device of the registry is in village '西村' of township 'east'"),
])
def test_cli_refuses_a_scope_the_registry_does_not_know(
        database_url: str, monkeypatch: pytest.MonkeyPatch, place: list[str], message: str) -> None:
    register_speakers(database_url, [("spk-1", "east", "east-1")])
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["tokens", "create", "dana", "--role", "cadre", *place])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {message}"
    with psycopg.connect(database_url) as conn:
        assert list_tokens(conn) == []


def test_api_serve_refuses_to_start_without_a_link_secret(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    monkeypatch.delenv("VILLAGE_DEVELOPMENT", raising=False)
    monkeypatch.delenv("VILLAGE_ALERTING__LINK_SECRET", raising=False)
    result = CliRunner().invoke(app, ["api", "serve"])
    assert result.exit_code == 2
    assert "VILLAGE_ALERTING__LINK_SECRET" in result.output
