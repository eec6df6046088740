"""Device and service secrets: generated once, stored only as Mosquitto password hashes (pure).

The stored hash is exactly what Mosquitto's password file holds (`$7$`: PBKDF2-HMAC-SHA512,
the format `mosquitto_passwd` writes by default since 2.0 and which 2.0.11 reads), so the
broker's `passwd` file is written straight from the database, without ever seeing a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# Mosquitto's own default. The secrets are random with 192 bits of entropy, so stretching
# adds nothing against guessing; more iterations would only slow every device's CONNECT
# when 150,000 of them reconnect after a broker restart.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12  # as mosquitto_passwd
SECRET_BYTES = 24  # 32 URL-safe characters

HASH_PATTERN = re.compile(r"\$7\$([1-9][0-9]{0,6})\$([A-Za-z0-9+/]{16})\$([A-Za-z0-9+/]{86}==)")


class HashFormatError(ValueError):
    """A stored hash that is not a Mosquitto `$7$` password hash."""


def generate_secret() -> str:
    """A new random secret: URL-safe characters only, so it fits a URL and a CSV cell as is."""
    return secrets.token_urlsafe(SECRET_BYTES)


def _derive(secret: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, iterations)


def hash_secret(secret: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The Mosquitto `$7$` hash of a secret (a fresh random salt unless one is given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = _derive(secret, salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def check_hash_format(hashed: str) -> str:
    """Return the hash if it has the `$7$` shape Mosquitto reads, else raise HashFormatError."""
    if HASH_PATTERN.fullmatch(hashed) is None:
        raise HashFormatError("not a Mosquitto $7$ (PBKDF2-SHA512) password hash")
    return hashed


def verify_secret(secret: str, hashed: str) -> bool:
    """Whether `secret` is the one `hashed` was made from (constant-time comparison)."""
    match = HASH_PATTERN.fullmatch(hashed)
    if match is None:
        return False
    iterations, salt, digest = match.groups()
    expected = base64.b64decode(digest)
    return hmac.compare_digest(_derive(secret, base64.b64decode(salt), int(iterations)), expected)
