"""The EMQX queries docs/registry.md gives, run on the registry as written there: the
authenticator's answer is what EMQX's `pbkdf2` check (sha512, 101 iterations, 64 bytes)
compares, and the authorizer grants a device its own topics only while it is active.
EMQX itself is not run here; this checks the registry's half."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import psycopg

from devices.credentials import PBKDF2_ITERATIONS
from devices.registry_csv import DeviceRow
from devices.store import add_device, retire_device
from devices.topics import Channel, topic

DOCS = Path(__file__).resolve().parents[2] / "docs/registry.md"


def _documented_queries() -> list[str]:
    """Each `query = "..."` of the docs, EMQX's ${placeholders} made psycopg parameters."""
    found = re.findall(r'query = "(.*?)"\n', DOCS.read_text(), flags=re.DOTALL)
    return [re.sub(r"\$\{(\w+)\}", r"%(\1)s", " ".join(query.split())) for query in found]


def test_the_authenticator_query_answers_what_emqx_pbkdf2_compares(database_url: str) -> None:
    authenticate, _ = _documented_queries()
    with psycopg.connect(database_url, autocommit=True) as conn:
        secret = add_device(conn, DeviceRow("wm-e1", "water_meter", "东村"), "test")
        rows = conn.execute(authenticate, {"username": "wm-e1", "clientid": "wm-e1"}).fetchall()
        assert len(rows) == 1
        password_hash, salt = rows[0]
        derived = hashlib.pbkdf2_hmac("sha512", secret.encode(), bytes(salt), PBKDF2_ITERATIONS, 64)
        assert password_hash == derived.hex()
        wrong = hashlib.pbkdf2_hmac("sha512", b"guess", bytes(salt), PBKDF2_ITERATIONS, 64)
        assert password_hash != wrong.hex()
        # Another device's client id, or a retired device: no row, so EMQX refuses.
        assert conn.execute(authenticate, {"username": "wm-e1", "clientid": "wm-e2"}).fetchall() == []
        retire_device(conn, "wm-e1", "test")
        assert conn.execute(authenticate, {"username": "wm-e1", "clientid": "wm-e1"}).fetchall() == []


def test_the_authorizer_query_gives_an_active_device_its_own_topics(database_url: str) -> None:
    _, authorize = _documented_queries()
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_device(conn, DeviceRow("wm-e3", "water_meter", "东村"), "test")
        add_device(conn, DeviceRow("gw-e4", "gateway", "东村"), "test")
        rules = conn.execute(authorize, {"username": "wm-e3"}).fetchall()
        assert sorted(rules) == sorted(
            [("allow", "publish", topic("sv", "wm-e3", channel)) for channel in (
                Channel.TELEMETRY, Channel.EVENT, Channel.STATUS, Channel.COMMAND_ACK)]
            + [("allow", "subscribe", topic("sv", "wm-e3", Channel.COMMAND))])
        gateway = conn.execute(authorize, {"username": "gw-e4"}).fetchall()
        assert ("allow", "publish", topic("sv", "gw-e4", Channel.GATEWAY_TELEMETRY)) in gateway
        assert len(gateway) == len(rules) + 1
        assert conn.execute(authorize, {"username": "wm-nobody"}).fetchall() == []
        retire_device(conn, "wm-e3", "test")
        assert conn.execute(authorize, {"username": "wm-e3"}).fetchall() == []
