"""The device command engine against a real database, with a recording Publisher and fixed times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from broadcast import command_store
from broadcast.command_engine import CommandEngine
from broadcast.command_service import CommandRequest, send_command
from broadcast.delivery import Happening
from broadcast.inbound import Ack, Presence
from ground.principal import SYSTEM

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


class Recording(list[tuple[str, str]]):
    def publish(self, device_id: str, payload: bytes) -> None:
        self.append((device_id, orjson.loads(payload)["id"]))


def _states(conn: psycopg.Connection, command_id: str) -> dict[str, tuple[str, int]]:
    return {row["device_id"]: (row["state"], row["attempts"])
            for row in command_store.report(conn, command_id)["devices"]}


def test_retried_with_the_same_id_until_expiry_and_sent_again_when_back(
        database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for device_id in ("wm-1", "wm-2", "wm-3"):
            conn.execute("INSERT INTO devices (device_id, kind, village) VALUES"
                         " (%s, 'water_meter', 'V')", (device_id,))
            conn.execute("INSERT INTO readings (device_id, metric, ts, value)"
                         " VALUES (%s, 'valve_open', %s, 1)", (device_id, T0))
        # Written without ingest: merged into latest_values as an import would be.
        conn.execute("SELECT village_merge_latest()")
        request = CommandRequest("set_valve", "test", {"open": False},
                                 device_ids=["wm-1", "wm-2", "wm-3"],
                                 expires_in=timedelta(minutes=1))
        command_id = send_command(conn, SYSTEM, request, T0)
        sent = Recording()
        engine = CommandEngine(sent, timedelta(seconds=10),
                               presence={"wm-1": True, "wm-2": True, "wm-3": False})
        engine.cycle(conn, T0)
        assert sorted(sent) == [(d, command_id) for d in ("wm-1", "wm-2", "wm-3")]
        engine.on_acks(conn, [Ack("wm-1", command_id, Happening.ACK_DONE, None, T0)], T0)
        sent.clear()
        engine.cycle(conn, T0 + timedelta(seconds=5))
        assert sent == []  # not yet due
        engine.cycle(conn, T0 + timedelta(seconds=11))
        assert sent == [("wm-2", command_id)]  # wm-2 is silent: again, same id
        engine.on_presence(conn, [Presence("wm-3", True)], T0 + timedelta(seconds=20))
        assert sent[-1] == ("wm-3", command_id)
        engine.on_acks(conn, [Ack("wm-3", command_id, Happening.ACK_REJECTED, "valve seized",
                                  T0 + timedelta(seconds=21))], T0 + timedelta(seconds=21))
        engine.cycle(conn, T0 + timedelta(minutes=2))
        assert _states(conn, command_id) == {"wm-1": ("done", 1), "wm-2": ("no_answer", 2),
                                             "wm-3": ("rejected", 2)}
        assert command_store.report(conn, command_id)["devices"][2]["reason"] == "valve seized"
