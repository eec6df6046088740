"""Delivery of device commands: the broadcast engine's states, retries and expiry, for one
command to many devices (no priorities, nothing held).

A command is published to every device at once: online ones are `sent` and retried with
the same id until they answer or it expires; offline ones are `offline`, queued by the
broker in their persistent session and published again when they come back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from broadcast import command_store, store
from broadcast.delivery import Change, DeliveryRow, Happening, advance, changes_for, retry_due
from broadcast.device_command import build_command
from broadcast.engine import Publisher
from broadcast.inbound import Ack, Presence
from broadcast.model import CONFIRMED, DeliveryState

S = DeliveryState
_TABLE = command_store.TABLE


@dataclass
class CommandEngine:
    """Decisions for every device command, driven by acks, presence and time."""

    publisher: Publisher
    retry_interval: timedelta
    presence: dict[str, bool] = field(default_factory=dict)
    _payloads: dict[str, tuple[datetime, bytes]] = field(default_factory=dict)

    def cycle(self, conn: psycopg.Connection, now: datetime) -> None:
        """Dispatch new commands, then expire, retry, and resend to those back online."""
        self._payloads = {c: kept for c, kept in self._payloads.items() if kept[0] > now}
        for row in command_store.claim_new(conn, now):
            self._payloads[row.command_id] = (row.expires_at, _payload(row))
            self._send(conn, command_store.deliveries(conn, row.command_id, [S.QUEUED]), now)
        expired = changes_for(command_store.expired_open(conn, now), Happening.EXPIRE, now)
        store.apply(conn, expired, _TABLE)
        command_store.record_alert_outcomes(conn, expired)
        due = [row for row in command_store.deliveries(conn, states=[S.SENT], unexpired_at=now)
               if retry_due(row.last_sent_at, now, self.retry_interval)]
        offline = command_store.deliveries(conn, states=[S.OFFLINE], unexpired_at=now)
        online = self._online(conn, [row.device_id for row in due + offline])
        store.apply(conn, changes_for([r for r in due if r.device_id not in online],
                                      Happening.WENT_OFFLINE, now), _TABLE)
        self._send(conn, [r for r in due + offline if r.device_id in online], now)

    def on_acks(self, conn: psycopg.Connection, acks: Sequence[Ack], now: datetime) -> int:
        """Record the answers to device commands (others are left alone); how many changed."""
        pairs = list(dict.fromkeys((ack.command_id, ack.device_id) for ack in acks))
        rows = {(row.broadcast_id, row.device_id): row
                for row in command_store.deliveries_of_pairs(conn, pairs)}
        states = {key: S(row.state) for key, row in rows.items()}
        latest: dict[tuple[str, str], Ack] = {}
        confirmed_at: dict[tuple[str, str], datetime] = {}
        for ack in acks:
            key = (ack.command_id, ack.device_id)
            new = advance(states[key], ack.happening) if key in states else None
            if new is None:
                continue
            states[key], latest[key] = new, ack
            if new in CONFIRMED:
                confirmed_at.setdefault(key, ack.received_at)
        changes = [Change(c, d, S(rows[c, d].state), states[c, d], ack.received_at,
                          reason=ack.reason, accepted_at=confirmed_at.get((c, d)))
                   for (c, d), ack in latest.items() if states[c, d] != S(rows[c, d].state)]
        command_store.record_alert_outcomes(conn, changes)
        return store.apply(conn, changes, _TABLE)

    def on_presence(self, conn: psycopg.Connection, updates: Iterable[Presence],
                    now: datetime) -> None:
        """Note who came and went: those back get what waits for them, at once."""
        back: list[str] = []
        gone: list[str] = []
        for update in updates:
            if self.presence.get(update.device_id) != update.online:
                (back if update.online else gone).append(update.device_id)
            self.presence[update.device_id] = update.online
        if gone:
            rows = command_store.deliveries(conn, states=[S.SENT], device_ids=gone)
            store.apply(conn, changes_for(rows, Happening.WENT_OFFLINE, now), _TABLE)
        if back:
            self._send(conn, command_store.deliveries(conn, states=[S.OFFLINE], device_ids=back,
                                                      unexpired_at=now), now)

    def _online(self, conn: psycopg.Connection, device_ids: Sequence[str]) -> set[str]:
        unknown = [d for d in device_ids if d not in self.presence]
        online = store.online_in_registry(conn, unknown) if unknown else set()
        return online | {d for d in device_ids if self.presence.get(d)}

    def _send(self, conn: psycopg.Connection, rows: Sequence[DeliveryRow], now: datetime) -> None:
        """Publish to each device: `sent` if online, else `offline` (the broker queues it)."""
        online = self._online(conn, [row.device_id for row in rows])
        changes = []
        for row in rows:
            happening = (Happening.SEND_ONLINE if row.device_id in online
                         else Happening.SEND_OFFLINE)
            old = S(row.state)
            new = advance(old, happening)
            if new is None:
                continue
            self.publisher.publish(row.device_id, self._payload(conn, row.broadcast_id))
            changes.append(Change(row.broadcast_id, row.device_id, old, new, now, sent=True))
        store.apply(conn, changes, _TABLE)

    def _payload(self, conn: psycopg.Connection, command_id: str) -> bytes:
        if command_id not in self._payloads:
            row = command_store.fetch_command(conn, command_id)
            assert row is not None, "a delivery's command exists (foreign key)"
            self._payloads[command_id] = (row.expires_at, _payload(row))
        return self._payloads[command_id][1]


def _payload(row: command_store.CommandRow) -> bytes:
    return build_command(row.op, row.args, row.command_id, row.expires_at).to_payload()
