"""API tokens: random, shown once, stored as SHA-256, each with a role and a scope.

The CLI (`village tokens ...`) and the API's authentication both go through here.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from ground.principal import Place, Principal, Role
from village.api import audit

TOKEN_PREFIX = "svt_"


class TokenError(ValueError):
    """A token request that cannot be carried out (the message says why)."""


@dataclass(frozen=True)
class TokenInfo:
    """A stored token, without its secret."""

    id: int
    name: str
    role: str
    township: str | None
    village: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def new_secret() -> str:
    """A fresh token: 256 random bits, URL-safe, with a recognisable prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token (a plain SHA-256 suffices for 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(name: str) -> Role:
    """The role named `name` (viewer, cadre, operator, admin)."""
    try:
        return Role.from_label(name)
    except KeyError:
        known = ", ".join(r.label for r in Role)
        raise TokenError(f"unknown role {name!r}; known: {known}") from None


def create_token(conn: psycopg.Connection, actor: Principal, name: str, role: Role,
                 scope: Place, expires_at: datetime | None = None) -> tuple[TokenInfo, str]:
    """Store a new token and return it with its secret (the only time the secret exists)."""
    if scope.village is not None and scope.township is None:
        raise TokenError("a village scope needs its township")
    secret = new_secret()
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(TokenInfo)) as cur:
            cur.execute(
                "INSERT INTO api_tokens (name, token_hash, role, township, village, created_by,"
                " expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " RETURNING id, name, role, township, village, created_at, created_by,"
                " expires_at, revoked_at, last_used_at",
                (name, token_hash(secret), role.label, scope.township, scope.village,
                 actor.name, expires_at),
            )
            info = cur.fetchone()
            assert info is not None
            audit.record(conn, actor, "token.create", f"token:{name}", scope,
                         {"role": info.role, "expires_at": str(expires_at) if expires_at else None})
    except psycopg.errors.UniqueViolation:
        raise TokenError(f"a token named {name!r} exists already") from None
    except psycopg.errors.CheckViolation:
        raise TokenError("a token name is 1 to 64 characters of A-Z a-z 0-9 _ . @ -") from None
    return info, secret


def check_place_known(conn: psycopg.Connection, scope: Place) -> None:
    """Raise TokenError unless the scope's township (and village) has a registered device:
    a typo would make a token that silently sees nothing."""
    if scope.township is None:
        return
    known = [row[0] for row in conn.execute(
        "SELECT DISTINCT village FROM devices WHERE township = %s ORDER BY 1", (scope.township,))]
    if not known:
        townships = [row[0] for row in conn.execute(
            "SELECT DISTINCT township FROM devices WHERE township IS NOT NULL ORDER BY 1 LIMIT 6")]
        listed = ", ".join(townships[:5]) + (", ..." if len(townships) > 5 else "")
        raise TokenError(f"no device of the registry is in township {scope.township!r}"
                         + (f" (townships: {listed})" if townships else " (the registry is empty)"))
    if scope.village is not None and scope.village not in known:
        raise TokenError(f"no device of the registry is in village {scope.village!r} of "
                         f"township {scope.township!r}")


def list_tokens(conn: psycopg.Connection, include_revoked: bool = False) -> list[TokenInfo]:
    """Every token (without secrets), oldest first."""
    with conn.cursor(row_factory=class_row(TokenInfo)) as cur:
        cur.execute(
            "SELECT id, name, role, township, village, created_at, created_by, expires_at,"
            " revoked_at, last_used_at FROM api_tokens"
            " WHERE %s OR revoked_at IS NULL ORDER BY id",
            (include_revoked,),
        )
        return cur.fetchall()


def revoke_token(conn: psycopg.Connection, actor: Principal, name: str) -> None:
    """Revoke the token named `name`; TokenError if there is no such live token."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL"
            " RETURNING township, village",
            (name,),
        ).fetchone()
        if row is None:
            raise TokenError(f"no live token named {name!r}")
        audit.record(conn, actor, "token.revoke", f"token:{name}", Place(row[0], row[1]))


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    """The principal a presented token stands for, or None if unknown, revoked or expired."""
    # last_used_at is refreshed at most once a minute, so busy tokens do not queue on a row lock.
    row = conn.execute(
        "WITH t AS (SELECT id, name, role, township, village, last_used_at FROM api_tokens"
        "  WHERE token_hash = %s AND revoked_at IS NULL"
        "  AND (expires_at IS NULL OR expires_at > now())),"
        " touched AS (UPDATE api_tokens a SET last_used_at = now() FROM t WHERE a.id = t.id"
        "  AND (t.last_used_at IS NULL OR t.last_used_at < now() - INTERVAL '1 minute'))"
        " SELECT name, role, township, village FROM t",
        (token_hash(token),),
    ).fetchone()
    if row is None:
        return None
    return Principal(f"token:{row[0]}", Role.from_label(row[1]), Place(row[2], row[3]))
