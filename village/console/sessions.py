"""Console sessions: a random cookie (only its SHA-256 is stored) and a CSRF token per session."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from village.api.tokens import token_hash
from village.console.accounts import User, get_user


@dataclass(frozen=True)
class Session:
    """A live session: who, and the token every form and htmx request must carry."""

    user: User
    csrf_token: str
    expires_at: datetime


def start_session(conn: psycopg.Connection, user: User, now: datetime,
                  lifetime: timedelta) -> tuple[str, Session]:
    """A new session for `user`: the cookie value (not stored) and the session."""
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO console_sessions (session_hash, user_id, csrf_token, created_at,"
                 " expires_at) VALUES (%s, %s, %s, %s, %s)",
                 (token_hash(cookie), user.id, csrf, now, now + lifetime))
    return cookie, Session(user, csrf, now + lifetime)


def find_session(conn: psycopg.Connection, cookie: str, now: datetime) -> Session | None:
    """The live session of a cookie, if it has not ended or expired and its user is enabled."""
    row = conn.execute(
        "SELECT s.user_id, s.csrf_token, s.expires_at FROM console_sessions s"
        " JOIN console_users u ON u.id = s.user_id"
        " WHERE s.session_hash = %s AND s.ended_at IS NULL AND s.expires_at > %s"
        " AND u.disabled_at IS NULL", (token_hash(cookie), now)).fetchone()
    if row is None:
        return None
    user = get_user(conn, row[0])
    return Session(user, row[1], row[2]) if user else None


def end_session(conn: psycopg.Connection, cookie: str, now: datetime) -> None:
    """Sign out: the cookie stops working at once."""
    conn.execute("UPDATE console_sessions SET ended_at = %s WHERE session_hash = %s"
                 " AND ended_at IS NULL", (now, token_hash(cookie)))


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Whether a form's or header's CSRF token is the session's (compared in constant time)."""
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
