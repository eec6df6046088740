"""Registry rows, routing documents and a recording notifier for the alerting tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from alerting.cycles import Engine
from alerting.evaluate import RuleBook
from alerting.notifiers.base import Message, Notifier, Recipient
from alerting.routing import build_routing
from alerting.rules import Rule


@dataclass
class Recorder:
    """A notifier seam of our own: keeps what it was asked to send."""

    channel: str = "recorder"
    sent: list[tuple[Message, Recipient | None]] = field(default_factory=list)

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Record the message."""
        self.sent.append((message, recipient))


def add_devices(conn: psycopg.Connection, rows: Iterable[tuple[str, str, str, str]],
                gateway: str | None = None) -> None:
    """Register devices (id, kind, township, village)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO devices (device_id, kind, township, village, gateway_id)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(*row, gateway) for row in rows],
        )


def add_readings(conn: psycopg.Connection, device_id: str, metric: str,
                 points: Iterable[tuple[datetime, float]]) -> None:
    """Store readings as ingest would (received_at = the transaction's time)."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO readings (device_id, metric, ts, value) VALUES (%s, %s, %s, %s)",
                        [(device_id, metric, ts, value) for ts, value in points])


def two_level_routing(receivers: list[dict[str, Any]], village_channels: list[str],
                      township_channels: list[str], **route: Any) -> dict[str, Any]:
    """A village cadre of V1 and the township office of T1, with the given receivers."""
    return {
        "receivers": receivers,
        "people": [
            {"id": "cadre-v1", "name": "王村干部", "phone": "+8613800000001",
             "email": "cadre@v1.example", "channels": village_channels,
             "attached": [{"level": "village", "township": "T1", "village": "V1"}]},
            {"id": "office-t1", "name": "乡镇值班室", "phone": "+8613800000002",
             "email": "duty@t1.example", "channels": township_channels,
             "attached": [{"level": "township", "township": "T1"}]},
        ],
        "route": {"group_wait": 0, "escalate_after": {"major": "60s", "critical": "60s"},
                  # an outage is one notice per township, whatever villages it spans
                  "routes": [{"match": {"condition": "stopped"}, "group_by": ["rule", "township"]}],
                  **route},
        "inhibit": [{"source": {"rule": "gateway-stopped"}, "target": {"condition": "stopped"},
                     "equal": ["gateway"]},
                    {"source": {"rule": "area-outage"}, "target": {"condition": "stopped"},
                     "equal": ["township"]}],
    }


def engine_for(rules: list[Rule], routing: dict[str, Any],
               notifiers: dict[str, Notifier]) -> Engine:
    """An engine with fixed links and no sleeping between retries."""
    return Engine(RuleBook(rules), build_routing(routing), notifiers,
                  link=lambda alert_id, who, now: f"http://phone.example/a/{alert_id}-{who}",
                  retry_backoff_s=0.0, sleep=lambda _: None)


def recording_engine(rules: list[Rule], recorder: Recorder | None = None, **route: Any) -> Engine:
    """An engine over `two_level_routing` whose one receiver, `rec`, is a Recorder."""
    routing = two_level_routing([{"name": "rec", "type": "console"}], ["rec"], ["rec"], **route)
    return engine_for(rules, routing, {"rec": recorder or Recorder()})
