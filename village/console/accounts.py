"""People who sign in to the console: argon2-hashed passwords, a role and a scope each,
lock-out after repeated failures. The console's user pages and `village users` call these;
every change is audited in the change's own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import LiteralString

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import sql
from psycopg.rows import class_row

from ground.principal import Place, Principal, Role
from village.api import audit

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the name is unknown, so a wrong name takes as long as a wrong
    # password; made at the first sign-in, not at import (hashing takes a tenth of a second).
    return _hasher.hash("not anyone's password")


class AccountError(ValueError):
    """A user change that cannot be carried out (the message says why)."""


@dataclass(frozen=True)
class User:
    """A console user, without the password hash."""

    id: int
    name: str
    display_name: str
    role: str
    township: str | None
    village: str | None
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    locked_until: datetime | None
    last_sign_in_at: datetime | None

    @property
    def principal(self) -> Principal:
        """Who this user acts as: the same model as an API token."""
        return Principal(f"user:{self.name}", Role.from_label(self.role),
                         Place(self.township, self.village))


@dataclass(frozen=True)
class SignInResult:
    """The user if the password was right; otherwise why not (`wrong` or `locked`)."""

    user: User | None
    refusal: str | None = None
    locked_until: datetime | None = None


_COLUMNS = sql.SQL("id, name, display_name, role, township, village, created_at, created_by,"
                   " disabled_at, locked_until, last_sign_in_at")


def lock_until(failures: int, max_failures: int, lock: timedelta, now: datetime) -> datetime | None:
    """When an account with `failures` wrong passwords in a row unlocks (None: not locked)."""
    return now + lock if failures >= max_failures else None


def check_password_rules(password: str) -> None:
    """AccountError unless the password is long enough to be worth hashing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def _check_scope(role: Role, scope: Place) -> None:
    if scope.village is not None and scope.township is None:
        raise AccountError("a village scope needs its township")
    if role is Role.ADMIN and scope.township is not None:
        raise AccountError("an admin covers the whole county")


def create_user(conn: psycopg.Connection, actor: Principal, name: str, password: str, role: Role,
                scope: Place, display_name: str = "") -> User:
    """Store a new user with an argon2 hash of `password`."""
    _check_scope(role, scope)
    check_password_rules(password)
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(User)) as cur:
            cur.execute(sql.SQL(
                "INSERT INTO console_users (name, display_name, password_hash, role, township,"
                " village, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {}"
            ).format(_COLUMNS),
                (name, display_name, _hasher.hash(password), role.label, scope.township,
                 scope.village, actor.name))
            user = cur.fetchone()
            assert user is not None
            audit.record(conn, actor, "user.create", f"user:{name}", scope, {"role": role.label})
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"a user named {name!r} exists already") from None
    except psycopg.errors.CheckViolation:
        raise AccountError("a user name is 1 to 64 characters of A-Z a-z 0-9 _ . @ -") from None
    return user


def list_users(conn: psycopg.Connection, include_disabled: bool = True) -> list[User]:
    """Every user, by name."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(sql.SQL("SELECT {} FROM console_users WHERE %s OR disabled_at IS NULL"
                            " ORDER BY name").format(_COLUMNS), (include_disabled,))
        return cur.fetchall()


def get_user(conn: psycopg.Connection, user_id: int) -> User | None:
    """One user by id."""
    with conn.cursor(row_factory=class_row(User)) as cur:
        cur.execute(sql.SQL("SELECT {} FROM console_users WHERE id = %s").format(_COLUMNS),
                    (user_id,))
        return cur.fetchone()


def _change(conn: psycopg.Connection, actor: Principal, name: str, action: str,
            assignment: LiteralString, params: tuple[object, ...]) -> None:
    with conn.transaction():
        row = conn.execute(
            sql.SQL("UPDATE console_users SET {} WHERE name = %s RETURNING id, township, village")
            .format(sql.SQL(assignment)),
            (*params, name)).fetchone()
        if row is None:
            raise AccountError(f"no user named {name!r}")
        # Whatever changed, the sessions it was granted under end with it.
        conn.execute("UPDATE console_sessions SET ended_at = now()"
                     " WHERE user_id = %s AND ended_at IS NULL", (row[0],))
        audit.record(conn, actor, action, f"user:{name}", Place(row[1], row[2]))


def disable_user(conn: psycopg.Connection, actor: Principal, name: str) -> None:
    """Disable a user at once: they cannot sign in and their sessions end."""
    if actor.name == f"user:{name}":
        raise AccountError("you cannot disable yourself")
    _change(conn, actor, name, "user.disable", "disabled_at = coalesce(disabled_at, now())", ())


def enable_user(conn: psycopg.Connection, actor: Principal, name: str) -> None:
    """Let a disabled user sign in again."""
    _change(conn, actor, name, "user.enable", "disabled_at = NULL", ())


def reset_password(conn: psycopg.Connection, actor: Principal, name: str, password: str) -> None:
    """Set a new password, clear any lock and end the user's sessions."""
    check_password_rules(password)
    _change(conn, actor, name, "user.reset_password",
            "password_hash = %s, failed_attempts = 0, locked_until = NULL",
            (_hasher.hash(password),))


def sign_in(conn: psycopg.Connection, name: str, password: str, now: datetime,
            max_failures: int, lock: timedelta) -> SignInResult:
    """Check a name and password; count a failure towards the lock, or reset the count."""
    with conn.transaction():
        row = conn.execute(
            "SELECT id, password_hash, disabled_at, locked_until FROM console_users"
            " WHERE name = %s FOR UPDATE", (name,)).fetchone()
        if row is None or row[2] is not None:
            _verify(_dummy_hash(), password)
            return SignInResult(None, "wrong")
        user_id, stored, _, locked = row
        if locked is not None and locked > now:
            return SignInResult(None, "locked", locked)
        if not _verify(stored, password):
            failures = conn.execute(
                "UPDATE console_users SET failed_attempts = failed_attempts + 1"
                " WHERE id = %s RETURNING failed_attempts", (user_id,)).fetchone()
            assert failures is not None
            until = lock_until(failures[0], max_failures, lock, now)
            if until is not None:
                conn.execute("UPDATE console_users SET failed_attempts = 0, locked_until = %s"
                             " WHERE id = %s", (until, user_id))
                audit.record(conn, Principal(f"user:{name}", Role.VIEWER), "user.locked",
                             f"user:{name}", None, {"until": until.isoformat()})
                return SignInResult(None, "locked", until)
            return SignInResult(None, "wrong")
        rehash = _hasher.hash(password) if _hasher.check_needs_rehash(stored) else stored
        conn.execute("UPDATE console_users SET failed_attempts = 0, locked_until = NULL,"
                     " last_sign_in_at = %s, password_hash = %s WHERE id = %s",
                     (now, rehash, user_id))
        return SignInResult(get_user(conn, user_id))


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
