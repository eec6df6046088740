"""The delivery engine: decides what to publish and records what speakers answer.

It joins the pure core (`delivery`, `inbound`) to the database (`store`) and to a
`Publisher` (the MQTT adapter in `daemon`, a small fake in tests). Every method takes an
open connection inside the caller's transaction and an explicit `now`; one thread calls
it, so the only concurrent writer is the service layer (cancel), and `store.apply` leaves a
row alone if it moved meanwhile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import psycopg

from broadcast import store
from broadcast.delivery import (
    IN_PROGRESS,
    Change,
    DeliveryRow,
    Happening,
    advance,
    changes_for,
    plan_sends,
    retry_due,
)
from broadcast.inbound import Ack, Presence
from broadcast.model import CONFIRMED, STOP_SUFFIX, DeliveryState, stop_command_id
from broadcast.schedules import fire_due
from devices.contract import priority_rank
from devices.models import PlayCommand, StopCommand

S = DeliveryState
_PUBLISHING = (Happening.SEND_ONLINE, Happening.SEND_OFFLINE)


class Publisher(Protocol):
    """Sends one command to one speaker (QoS 1)."""

    def publish(self, device_id: str, payload: bytes) -> None:
        """Queue `payload` for the speaker's cmd topic."""


@dataclass
class Engine:
    """Delivery decisions for every broadcast, driven by acks, presence and time."""

    publisher: Publisher
    retry_interval: timedelta
    presence: dict[str, bool] = field(default_factory=dict)
    # Each broadcast's play command with its expiry, kept while it may still be sent.
    _payloads: dict[str, tuple[datetime, bytes]] = field(default_factory=dict)
    # States entered by the changes of the open transaction; the daemon counts them once it
    # commits (and forgets them if it rolls back).
    entered: Counter[str] = field(default_factory=Counter)

    # ---- what the daemon calls ----

    def cycle(self, conn: psycopg.Connection, now: datetime) -> None:
        """Fire due schedules, dispatch new broadcasts, then expire, stop, retry and release."""
        fire_due(conn, now)
        # Nothing expired is sent again, and a long-running daemon must not keep them all.
        self._payloads = {b: kept for b, kept in self._payloads.items() if kept[0] > now}
        self.dispatch_new(conn, now)
        self.expire(conn, now)
        self.send_stops(conn, now)
        self.retry(conn, now)
        held = store.deliveries(conn, states=[S.HELD], unexpired_at=now, lock=True)
        offline = store.deliveries(conn, states=[S.OFFLINE], unexpired_at=now, lock=True)
        back = self._online(conn, [row.device_id for row in offline])
        self._send(conn, held + [row for row in offline if row.device_id in back], now)

    def dispatch_new(self, conn: psycopg.Connection, now: datetime) -> int:
        """Send every broadcast no daemon has handled yet; the number claimed."""
        claimed = store.claim_new(conn, now)
        # Emergencies first, so what arrived with them is held back rather than interrupting.
        claimed.sort(key=lambda row: (-priority_rank(row.priority), row.created_at))
        for row in claimed:
            self._payloads[row.broadcast_id] = (row.expires_at, _play_payload(row))
            self._send(conn, store.deliveries(conn, row.broadcast_id, [S.QUEUED], lock=True), now)
        return len(claimed)

    def on_acks(self, conn: psycopg.Connection, acks: Sequence[Ack], now: datetime) -> int:
        """Record acknowledgements (in arrival order); the number of deliveries changed."""
        plays = [ack for ack in acks if not ack.command_id.endswith(STOP_SUFFIX)]
        pairs = list(dict.fromkeys((ack.command_id, ack.device_id) for ack in plays))
        changes = ack_changes(store.deliveries_of_pairs(conn, pairs), plays)
        changed = self._apply(conn, changes)
        finished = [c.device_id for c in changes if c.new not in IN_PROGRESS]
        if finished:
            self._release_held(conn, finished, now)
        return changed

    def on_presence(self, conn: psycopg.Connection, updates: Iterable[Presence],
                    now: datetime) -> None:
        """Note who came and went: those back get what waits for them, at once."""
        back, gone = note_presence(self.presence, updates)
        if gone:
            rows = store.deliveries(conn, states=[S.SENT], device_ids=gone, lock=True)
            self._apply(conn, changes_for(rows, Happening.WENT_OFFLINE, now))
        if back:
            self._send(conn, store.deliveries(conn, states=[S.OFFLINE, S.HELD], device_ids=back,
                                              unexpired_at=now, lock=True), now)

    # ---- the sweeps ----

    def expire(self, conn: psycopg.Connection, now: datetime) -> int:
        """Close deliveries whose broadcast expired before they were confirmed."""
        return self._apply(conn, changes_for(store.expired_open(conn, now), Happening.EXPIRE,
                                             now))

    def send_stops(self, conn: psycopg.Connection, now: datetime) -> int:
        """Send `stop` to every speaker that was sent a broadcast since cancelled."""
        due = store.stops_due(conn)
        for broadcast_id, device_id, expires_at in due:
            command = StopCommand(id=stop_command_id(broadcast_id), target_id=broadcast_id,
                                  expires_at=expires_at)
            self.publisher.publish(device_id, command.to_payload())
        store.mark_stopped(conn, [(b, d) for b, d, _ in due], now)
        return len(due)

    def retry(self, conn: psycopg.Connection, now: datetime) -> int:
        """Publish again (same id) what online speakers have not answered in time."""
        rows = [row for row in store.deliveries(conn, states=[S.SENT], unexpired_at=now,
                                                lock=True)
                if retry_due(row.last_sent_at, now, self.retry_interval)]
        online = self._online(conn, [row.device_id for row in rows])
        self._apply(conn, changes_for([row for row in rows if row.device_id not in online],
                                      Happening.WENT_OFFLINE, now))
        self._send(conn, [row for row in rows if row.device_id in online], now)
        return len(rows)

    # ---- helpers ----

    def _apply(self, conn: psycopg.Connection, changes: Sequence[Change]) -> int:
        """Write state changes, noting the states entered until the daemon commits them."""
        changed = store.apply(conn, changes)
        self.entered.update(str(change.new) for change in changes)
        return changed

    def _release_held(self, conn: psycopg.Connection, device_ids: Sequence[str],
                      now: datetime) -> None:
        held = store.deliveries(conn, states=[S.HELD], device_ids=device_ids, unexpired_at=now,
                                lock=True)
        if held:
            self._send(conn, held, now)

    def _online(self, conn: psycopg.Connection, device_ids: Sequence[str]) -> set[str]:
        return online_of(conn, self.presence, device_ids)

    def _send(self, conn: psycopg.Connection, rows: Sequence[DeliveryRow],
              now: datetime) -> None:
        """Plan and publish waiting deliveries, one broadcast at a time, highest first."""
        by_broadcast: dict[str, list[DeliveryRow]] = {}
        for row in sorted(rows, key=lambda r: -r.priority_rank):
            by_broadcast.setdefault(row.broadcast_id, []).append(row)
        for broadcast_id, group in by_broadcast.items():
            device_ids = [row.device_id for row in group]
            online = self._online(conn, device_ids)
            busy = store.busy_ranks(conn, device_ids, now)
            plan = plan_sends(group[0].priority_rank, device_ids, online.__contains__, busy)
            payload = self._payload(conn, broadcast_id)
            changes = []
            for row in group:
                happening, old = plan[row.device_id], S(row.state)
                new = advance(old, happening)
                if new is None or (new == old and happening not in _PUBLISHING):
                    continue
                publish = happening in _PUBLISHING
                if publish:
                    self.publisher.publish(row.device_id, payload)
                changes.append(Change(broadcast_id, row.device_id, old, new, now,
                                            sent=publish))
            # Written before the next broadcast is planned, so it sees these as busy.
            self._apply(conn, changes)

    def _payload(self, conn: psycopg.Connection, broadcast_id: str) -> bytes:
        if broadcast_id not in self._payloads:
            row = store.fetch_broadcast(conn, broadcast_id)
            assert row is not None, "a delivery's broadcast exists (foreign key)"
            self._payloads[broadcast_id] = (row.expires_at, _play_payload(row))
        return self._payloads[broadcast_id][1]


def _play_payload(row: store.BroadcastRow) -> bytes:
    return PlayCommand(
        id=row.broadcast_id, priority=row.priority,
        text=row.text, audio_url=row.audio_url, volume_pct=row.volume_pct, repeat=row.repeat,
        expires_at=row.expires_at,
    ).to_payload()


# ---- shared with the device command engine ----

def ack_changes(rows: Iterable[DeliveryRow], acks: Sequence[Ack]) -> list[Change]:
    """What acknowledgements (in arrival order) do to these deliveries: each delivery's last
    state, the reason it came with, and when it first confirmed."""
    found = {(row.broadcast_id, row.device_id): row for row in rows}
    states = {key: S(row.state) for key, row in found.items()}
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
    return [Change(c, d, S(found[c, d].state), states[c, d], ack.received_at,
                   reason=ack.reason, accepted_at=confirmed_at.get((c, d)))
            for (c, d), ack in latest.items() if states[c, d] != S(found[c, d].state)]


def note_presence(known: dict[str, bool], updates: Iterable[Presence],
                  ) -> tuple[list[str], list[str]]:
    """Record who is online; (those back online, those gone offline) against what was known."""
    back: list[str] = []
    gone: list[str] = []
    for update in updates:
        if known.get(update.device_id) != update.online:
            (back if update.online else gone).append(update.device_id)
        known[update.device_id] = update.online
    return back, gone


def online_of(conn: psycopg.Connection, known: dict[str, bool],
              device_ids: Sequence[str]) -> set[str]:
    """Who is online: what their retained status said, else what the registry view says."""
    unknown = [d for d in device_ids if d not in known]
    online = store.online_in_registry(conn, unknown) if unknown else set()
    return online | {d for d in device_ids if known.get(d)}
