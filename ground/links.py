"""Signed, expiring links for one alert and one person (pure; HMAC-SHA256).

The alert notification carries the link; the API's phone page verifies it. No login:
the signature is the permission, bounded to that alert, that person and a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

# Far longer than any token we sign (a few dozen bytes): longer ones are refused unread.
MAX_TOKEN_BYTES = 1024


class LinkError(ValueError):
    """A link token that is malformed, altered or expired."""


class LinkExpired(LinkError):
    """A genuine link token whose time is up."""


@dataclass(frozen=True)
class LinkGrant:
    """What a valid token allows: acting on this alert as this person until then."""

    alert_id: int
    person_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, body: bytes) -> bytes:
    return _b64(hmac.new(secret, body, hashlib.sha256).digest()).encode()


def sign_link_token(secret: bytes, grant: LinkGrant) -> str:
    """A URL-safe token for the grant."""
    body = _b64(f"{grant.alert_id}|{grant.person_id}|{int(grant.expires_at.timestamp())}".encode())
    return f"{body}.{_signature(secret, body.encode()).decode()}"


def verify_link_token(secret: bytes, token: str, now: datetime) -> LinkGrant:
    """The grant a token carries; LinkError if it is altered, malformed or expired."""
    # Compared as bytes: a link typed or mangled on a phone may hold any character, and
    # compare_digest refuses a str that is not ASCII. `surrogatepass` keeps even a lone
    # surrogate a comparable (and unequal) byte string.
    raw = token.encode("utf-8", "surrogatepass")
    body, _, signature = raw.partition(b".")
    if not body or len(raw) > MAX_TOKEN_BYTES or not hmac.compare_digest(
            signature, _signature(secret, body)):
        raise LinkError("the link is not valid")
    try:
        alert_id, person_id, expires = _unb64(body.decode("ascii")).decode().split("|")
        grant = LinkGrant(int(alert_id), person_id, datetime.fromtimestamp(int(expires), UTC))
    except (ValueError, OverflowError, OSError) as exc:
        raise LinkError("the link is not valid") from exc
    if now >= grant.expires_at:
        raise LinkExpired("the link has expired")
    return grant


def alert_link(base_url: str, secret: bytes, grant: LinkGrant) -> str:
    """The URL of the phone page for this alert and person."""
    return f"{base_url.rstrip('/')}/a/{sign_link_token(secret, grant)}"
