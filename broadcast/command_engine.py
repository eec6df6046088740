"""Delivery of device commands: the broadcast engine's states, retries and expiry, for one
command to many devices (no priorities, nothing held).

A command is published to every device at once: online ones are `sent` and retried with
the same id until they answer or it expires; offline ones are `offline`, queued by the
broker in their persistent session and published again when they come back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from broadcast import command_store, store
from broadcast.delivery import Change, DeliveryRow, Happening, advance, changes_for, retry_due
from broadcast.device_command import build_command
from broadcast.engine import Publisher, ack_changes, note_presence, online_of
from broadcast.inbound import Ack, Presence
from broadcast.model import DeliveryState

S = DeliveryState
_TABLE = command_store.TABLE


@dataclass
class CommandEngine:
    """Decisions for every device command, driven by acks, presence and time."""

    publisher: Publisher
    retry_interval: timedelta
    presence: dict[str, bool] = field(default_factory=dict)
    _payloads: dict[str, tuple[datetime, bytes]] = field(default_factory=dict)
    # States entered by the open transaction's changes, counted by the daemon once committed.
    entered: Counter[str] = field(default_factory=Counter)

    def cycle(self, conn: psycopg.Connection, now: datetime) -> None:
        """Dispatch new commands, then expire, retry, and resend to those back online."""
        self._payloads = {c: kept for c, kept in self._payloads.items() if kept[0] > now}
        for row in command_store.claim_new(conn, now):
            self._payloads[row.command_id] = (row.expires_at, _payload(row))
            self._send(conn, command_store.deliveries(conn, row.command_id, [S.QUEUED]), now)
        expired = changes_for(command_store.expired_open(conn, now), Happening.EXPIRE, now)
        self._apply(conn, expired)
        command_store.record_alert_outcomes(conn, expired)
        due = [row for row in command_store.deliveries(conn, states=[S.SENT], unexpired_at=now)
               if retry_due(row.last_sent_at, now, self.retry_interval)]
        offline = command_store.deliveries(conn, states=[S.OFFLINE], unexpired_at=now)
        online = self._online(conn, [row.device_id for row in due + offline])
        self._apply(conn, changes_for([r for r in due if r.device_id not in online],
                                      Happening.WENT_OFFLINE, now))
        self._send(conn, [r for r in due + offline if r.device_id in online], now)

    def on_acks(self, conn: psycopg.Connection, acks: Sequence[Ack], now: datetime) -> int:
        """Record the answers to device commands (others are left alone); how many changed."""
        pairs = list(dict.fromkeys((ack.command_id, ack.device_id) for ack in acks))
        changes = ack_changes(store.deliveries_of_pairs(conn, pairs, _TABLE), acks)
        command_store.record_alert_outcomes(conn, changes)
        return self._apply(conn, changes)

    def on_presence(self, conn: psycopg.Connection, updates: Iterable[Presence],
                    now: datetime) -> None:
        """Note who came and went: those back get what waits for them, at once."""
        back, gone = note_presence(self.presence, updates)
        if gone:
            rows = command_store.deliveries(conn, states=[S.SENT], device_ids=gone)
            self._apply(conn, changes_for(rows, Happening.WENT_OFFLINE, now))
        if back:
            self._send(conn, command_store.deliveries(conn, states=[S.OFFLINE], device_ids=back,
                                                      unexpired_at=now), now)

    def _apply(self, conn: psycopg.Connection, changes: Sequence[Change]) -> int:
        changed = store.apply(conn, changes, _TABLE)
        self.entered.update(str(change.new) for change in changes)
        return changed

    def _online(self, conn: psycopg.Connection, device_ids: Sequence[str]) -> set[str]:
        return online_of(conn, self.presence, device_ids)

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
        self._apply(conn, changes)

    def _payload(self, conn: psycopg.Connection, command_id: str) -> bytes:
        if command_id not in self._payloads:
            row = command_store.fetch_command(conn, command_id)
            assert row is not None, "a delivery's command exists (foreign key)"
            self._payloads[command_id] = (row.expires_at, _payload(row))
        return self._payloads[command_id][1]


def _payload(row: command_store.CommandRow) -> bytes:
    return build_command(row.op, row.args, row.command_id, row.expires_at).to_payload()
