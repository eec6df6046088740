"""Broadcast ids by a unique prefix, and broadcasts that complete when every speaker is done."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from broadcast.engine import Engine
from broadcast.model import BroadcastError, NotFound
from broadcast.service import (
    cancel_broadcast,
    delivery_report,
    list_broadcasts,
    resolve_id,
    show_broadcast,
)
from ground.principal import SYSTEM
from tests.broadcast.conftest import T0, RecordingPublisher
from tests.broadcast.test_engine import ack, send
from village.cli import app


def test_a_unique_prefix_of_six_characters_names_a_broadcast(conn: psycopg.Connection) -> None:
    b = send(conn)
    assert resolve_id(conn, b) == b
    assert resolve_id(conn, b[:6]) == b
    assert resolve_id(conn, b[:6].upper()) == b
    assert show_broadcast(conn, b[:8], SYSTEM, T0).broadcast.broadcast_id == b
    assert delivery_report(conn, b[:6], SYSTEM, T0).broadcast_id == b


@pytest.mark.parametrize(("given", "error", "message"), [
    ("1", BroadcastError, "give its 32 hex characters, or at least its first 6"),
    ("abcde", BroadcastError, "at least its first 6"),
    ("zzzzzzzz", BroadcastError, "not a broadcast id"),
    ("a%%%%%", BroadcastError, "not a broadcast id"),
    ("ffffff", NotFound, "no broadcast ffffff"),
])
def test_a_short_or_unknown_id_says_why(conn: psycopg.Connection, given: str,
                                        error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_id(conn, given)


def test_a_prefix_two_broadcasts_share_asks_for_more(conn: psycopg.Connection) -> None:
    first, second = send(conn), send(conn)
    # Two ids sharing their first six characters (1 chance in 16 million of happening).
    conn.execute("SET session_replication_role = replica")  # the deliveries follow below
    for table in ("broadcasts", "broadcast_deliveries"):
        conn.execute(f"UPDATE {table} SET broadcast_id = 'abcdef' || substr(broadcast_id, 7)")  # noqa: S608 - constant names
    conn.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(BroadcastError, match="starts more than one broadcast id"):
        resolve_id(conn, "abcdef")
    assert resolve_id(conn, "abcdef" + first[6:12]) == "abcdef" + first[6:]
    assert second != first


def test_the_command_line_takes_a_prefix(database_url: str, conn: psycopg.Connection,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    b = send(conn)
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    runner = CliRunner()
    for command in ("show", "report", "cancel"):
        result = runner.invoke(app, ["broadcast", command, b[:7]])
        assert result.exit_code == 0, result.output
        assert b in result.stdout
    short = runner.invoke(app, ["broadcast", "report", "1"])
    assert short.exit_code == 1
    assert short.stderr.strip() == ("error: '1' is not a broadcast id: give its 32 hex "
                                    "characters, or at least its first 6")


def test_a_broadcast_completes_when_every_speaker_reached_a_final_state(
        conn: psycopg.Connection, engine: Engine, publisher: RecordingPublisher) -> None:
    b = send(conn, speakers=["spk-1", "spk-2", "spk-3"])
    engine.cycle(conn, T0)
    t = T0 + timedelta(seconds=2)
    engine.on_acks(conn, [ack(b, "spk-1", "accepted", t), ack(b, "spk-1", "done", t),
                          ack(b, "spk-2", "rejected", t, "muted")], t)
    assert delivery_report(conn, b, SYSTEM, t).status == "active"  # spk-3 has not answered
    last = t + timedelta(seconds=3)
    engine.on_acks(conn, [ack(b, "spk-3", "done", last)], last)
    report = delivery_report(conn, b, SYSTEM, last + timedelta(seconds=1))
    assert (report.status, report.completed_at) == ("completed", last)
    # Completed stays completed past the expiry (it is not an unfinished broadcast).
    later = delivery_report(conn, b, SYSTEM, T0 + timedelta(hours=2))
    assert later.status == "completed"
    assert [r.status for r in list_broadcasts(conn, SYSTEM, later.created_at)] == ["completed"]
    row = conn.execute("SELECT status, completed_at FROM broadcast_report"
                       " WHERE broadcast_id = %s", (b,)).fetchone()
    assert row == ("completed", last)


def test_a_cancelled_broadcast_stays_cancelled(conn: psycopg.Connection, engine: Engine,
                                               publisher: RecordingPublisher) -> None:
    b = send(conn, speakers=["spk-1"])
    engine.cycle(conn, T0)
    report = cancel_broadcast(conn, b, SYSTEM, T0 + timedelta(seconds=1))
    assert (report.status, report.completed_at) == ("cancelled", None)
