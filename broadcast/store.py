"""The broadcast tables' SQL (adapter); `broadcast_schedules` is read and written in `schedules`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from broadcast.delivery import IN_PROGRESS, Change, DeliveryRow
from broadcast.model import FINAL, BroadcastRequest, DeliveryState, Speaker
from devices.contract import priority_rank
from ground.principal import Place, Principal, Role

NOTIFY_CHANNEL = "village_broadcast"


@dataclass(frozen=True, slots=True)
class BroadcastRow:
    """A broadcast as recorded."""

    broadcast_id: str
    created_at: datetime
    created_by: str
    creator_role: str
    priority: str
    text: str | None
    audio_url: str | None
    volume_pct: int | None
    repeat: int
    expires_at: datetime
    scope: dict[str, Any]
    scope_label: str
    place_township: str | None
    place_village: str | None
    schedule_id: int | None
    status: str
    dispatched_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str | None

    @property
    def place(self) -> Place:
        """The smallest place holding every target."""
        return Place(self.place_township, self.place_village)


def wake_daemon(conn: psycopg.Connection, payload: str) -> None:
    """Wake the delivery daemon when this transaction commits (NOTIFY waits for the commit)."""
    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))


def load_speakers(conn: psycopg.Connection) -> list[Speaker]:
    """Every registered speaker, active or retired."""
    rows = conn.execute(
        "SELECT device_id, township, village, lifecycle = 'active' FROM devices"
        " WHERE kind = 'speaker' ORDER BY device_id").fetchall()
    return [Speaker(*row) for row in rows]


def load_groups(conn: psycopg.Connection) -> dict[str, frozenset[str]]:
    """Every named speaker group with its members."""
    rows = conn.execute(
        "SELECT group_name, array_agg(device_id) FROM broadcast_groups GROUP BY group_name"
    ).fetchall()
    return {name: frozenset(members) for name, members in rows}


def replace_group(conn: psycopg.Connection, name: str, device_ids: Sequence[str]) -> None:
    """Make a group hold exactly these speakers (none: delete it)."""
    conn.execute("DELETE FROM broadcast_groups WHERE group_name = %s", (name,))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO broadcast_groups VALUES (%s, %s)",
                        [(name, device_id) for device_id in device_ids])


def audit(conn: psycopg.Connection, principal: Principal, action: str, at: datetime,
          broadcast_id: str | None = None, schedule_id: int | None = None,
          detail: dict[str, Any] | None = None) -> None:
    """Record who did what, when."""
    conn.execute(
        "INSERT INTO broadcast_audit (at, actor, actor_role, action, broadcast_id, schedule_id,"
        " detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (at, principal.name, principal.role.label, action, broadcast_id, schedule_id,
         Jsonb({"actor_scope": principal.scope.label(), **(detail or {})})))


def insert_broadcast(conn: psycopg.Connection, broadcast_id: str, request: BroadcastRequest,
                     principal: Principal, now: datetime, place: Place,
                     targets: Iterable[Speaker], schedule_id: int | None = None) -> None:
    """Record a broadcast and one queued delivery per target, and wake the daemon on commit."""
    expires_at = request.expiry(now)
    conn.execute(
        "INSERT INTO broadcasts (broadcast_id, created_at, created_by, creator_role,"
        " creator_township, creator_village, priority, text, audio_url, volume_pct, repeat,"
        " expires_at, scope, scope_label, place_township, place_village, schedule_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (broadcast_id, now, principal.name, principal.role.label,
         principal.scope.township, principal.scope.village, request.priority, request.text,
         request.audio_url, request.volume_pct, request.repeat, expires_at,
         Jsonb(request.scope.model_dump(mode="json")), request.scope.label(),
         place.township, place.village, schedule_id))
    rank = priority_rank(request.priority)
    with conn.cursor() as cur, cur.copy(
        "COPY broadcast_deliveries (broadcast_id, device_id, priority_rank, expires_at,"
        " updated_at) FROM STDIN"
    ) as copy:
        for speaker in targets:
            copy.write_row((broadcast_id, speaker.device_id, rank, expires_at, now))
    wake_daemon(conn, broadcast_id)


def fetch_broadcast(conn: psycopg.Connection, broadcast_id: str,
                    for_update: bool = False) -> BroadcastRow | None:
    """One broadcast, or None."""
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=class_row(BroadcastRow)) as cur:
        return cur.execute(
            f"SELECT {_BROADCAST_COLUMNS} FROM broadcasts WHERE broadcast_id = %s{lock}",  # noqa: S608 - constant columns
            (broadcast_id,)).fetchone()


_BROADCAST_COLUMNS = ", ".join(BroadcastRow.__slots__)

# A principal sees a broadcast when their scope and its place overlap.
_VISIBLE = (
    "(%(township)s::text IS NULL OR place_township IS NULL OR (place_township = %(township)s"
    " AND (%(village)s::text IS NULL OR place_village IS NULL OR place_village = %(village)s)))")


def list_reports(conn: psycopg.Connection, scope: Place, limit: int) -> list[dict[str, Any]]:
    """The newest broadcasts visible from `scope`, with their counts per state."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT r.* FROM broadcast_report r JOIN broadcasts USING (broadcast_id) WHERE "  # noqa: S608 - constant
            + _VISIBLE + " ORDER BY r.created_at DESC LIMIT %(limit)s",
            {"township": scope.township, "village": scope.village, "limit": limit}).fetchall()


def report_counts(conn: psycopg.Connection, broadcast_id: str) -> dict[str, Any] | None:
    """The `broadcast_report` row of one broadcast."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM broadcast_report WHERE broadcast_id = %s",
                           (broadcast_id,)).fetchone()


def unconfirmed(conn: psycopg.Connection, broadcast_id: str) -> list[dict[str, Any]]:
    """The speakers of a broadcast that have not confirmed, and why."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT device_id, township, village, state, reason, attempts, last_sent_at"
            " FROM broadcast_unconfirmed WHERE broadcast_id = %s ORDER BY device_id",
            (broadcast_id,)).fetchall()


def mark_cancelled(conn: psycopg.Connection, broadcast_id: str, by: str, at: datetime) -> None:
    """Record that a broadcast was cancelled, and wake the daemon to send stops on commit."""
    conn.execute(
        "UPDATE broadcasts SET status = 'cancelled', cancelled_at = %s, cancelled_by = %s"
        " WHERE broadcast_id = %s", (at, by, broadcast_id))
    wake_daemon(conn, broadcast_id)


_DELIVERY_COLUMNS = ", ".join(DeliveryRow.__slots__)
# The tables of deliveries written and read here, each with its command id column: a
# broadcast's (its play command's id) and a device command's (which has no priority).
DELIVERY_TABLES = {"broadcast_deliveries": "broadcast_id",
                   "device_command_deliveries": "command_id"}
DELIVERY_COLUMNS = {
    "broadcast_deliveries": _DELIVERY_COLUMNS,
    "device_command_deliveries": ("command_id AS broadcast_id, device_id, state,"
                                  " 0 AS priority_rank, last_sent_at"),
}

# A delivery that was published and then cancelled, whose `stop` has not gone out yet.
_STOP_PENDING = "state = 'cancelled' AND attempts > 0 AND stop_sent_at IS NULL"

_DELIVERIES = (
    f"SELECT {_DELIVERY_COLUMNS} FROM broadcast_deliveries"  # noqa: S608 - constant columns
    " WHERE (%(broadcast)s::text IS NULL OR broadcast_id = %(broadcast)s)"
    " AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))"
    " AND (%(devices)s::text[] IS NULL OR device_id = ANY(%(devices)s))"
    " AND (%(now)s::timestamptz IS NULL OR expires_at > %(now)s)")


def deliveries(conn: psycopg.Connection, broadcast_id: str | None = None,
               states: Iterable[DeliveryState] | None = None,
               device_ids: Sequence[str] | None = None,
               unexpired_at: datetime | None = None, lock: bool = False) -> list[DeliveryRow]:
    """Deliveries filtered by broadcast, state, speaker, and not expired at `unexpired_at`."""
    params = {
        "broadcast": broadcast_id,
        "states": None if states is None else [str(state) for state in states],
        "devices": None if device_ids is None else list(device_ids),
        "now": unexpired_at,
    }
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        return cur.execute(_DELIVERIES + (" FOR UPDATE" if lock else ""), params).fetchall()


def deliveries_of_pairs(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]],
                        table: str = "broadcast_deliveries") -> list[DeliveryRow]:
    """The deliveries of these (command id, device) pairs that exist, locked."""
    key = DELIVERY_TABLES[table]
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        return cur.execute(
            f"SELECT {DELIVERY_COLUMNS[table]} FROM {table} d"  # noqa: S608 - constant names
            f" JOIN unnest(%s::text[], %s::text[]) AS p({key}, device_id)"
            f" USING ({key}, device_id) FOR UPDATE OF d",
            ([b for b, _ in pairs], [d for _, d in pairs])).fetchall()


def dead_letter(conn: psycopg.Connection, topic: str, device_id: str | None, reason: str,
                detail: str, payload: bytes, keep_bytes: int = 4096) -> None:
    """Keep a message that broke the contract, with the reason, for someone to look at."""
    conn.execute(
        "INSERT INTO dead_letters (topic, device_id, reason, detail, payload, payload_bytes)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (topic, device_id, reason, detail, payload[:keep_bytes], len(payload)))


def expired_open(conn: psycopg.Connection, now: datetime) -> list[DeliveryRow]:
    """Deliveries whose broadcast has expired and that could still change."""
    with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        return cur.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM broadcast_deliveries"  # noqa: S608 - constant columns
            " WHERE state IN ('queued', 'held', 'offline', 'sent')"
            " AND expires_at <= %s FOR UPDATE", (now,)).fetchall()


def busy_ranks(conn: psycopg.Connection, device_ids: Sequence[str],
               now: datetime) -> dict[str, int]:
    """Per speaker, the highest priority rank of a broadcast it is playing or about to play.

    A cancelled broadcast counts until its `stop` has gone out: a lower priority published
    before the stop would reach a speaker still playing it, and be refused.
    """
    rows = conn.execute(
        "SELECT device_id, max(priority_rank) FROM broadcast_deliveries"  # noqa: S608 - constant
        " WHERE device_id = ANY(%s) AND expires_at > %s"
        f" AND (state = ANY(%s) OR ({_STOP_PENDING})) GROUP BY device_id",
        (list(device_ids), now, [str(state) for state in IN_PROGRESS])).fetchall()
    return {device_id: rank for device_id, rank in rows}


def claim_new(conn: psycopg.Connection, now: datetime) -> list[BroadcastRow]:
    """Broadcasts no daemon has handled yet, marked active (skipping ones another holds)."""
    with conn.cursor(row_factory=class_row(BroadcastRow)) as cur:
        return cur.execute(
            f"UPDATE broadcasts SET status = 'active', dispatched_at = %s WHERE broadcast_id IN"  # noqa: S608 - constant
            " (SELECT broadcast_id FROM broadcasts WHERE status = 'new'"
            "  ORDER BY created_at FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_BROADCAST_COLUMNS}", (now,)).fetchall()




def apply(conn: psycopg.Connection, changes: Sequence[Change],
          table: str = "broadcast_deliveries") -> int:
    """Write state changes in one statement; a row that moved meanwhile is left alone."""
    if not changes:
        return 0
    key = DELIVERY_TABLES[table]
    final = [str(state) for state in FINAL]
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE {table} d SET"  # noqa: S608 - table and key come from DELIVERY_TABLES
            " state = c.new,"
            " reason = coalesce(c.reason, d.reason),"
            " attempts = d.attempts + c.sent::int,"
            " first_sent_at = CASE WHEN c.sent THEN coalesce(d.first_sent_at, c.at)"
            "                 ELSE d.first_sent_at END,"
            " last_sent_at = CASE WHEN c.sent THEN c.at ELSE d.last_sent_at END,"
            " accepted_at = coalesce(d.accepted_at, c.accepted_at),"
            " finished_at = CASE WHEN c.new = ANY(%s) THEN c.at ELSE d.finished_at END,"
            " updated_at = c.at"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
            "             %s::bool[], %s::timestamptz[], %s::timestamptz[])"
            "      AS c(broadcast_id, device_id, old, new, reason, sent, at, accepted_at)"
            f" WHERE d.{key} = c.broadcast_id AND d.device_id = c.device_id"
            " AND d.state = c.old",
            (final,
             [c.broadcast_id for c in changes], [c.device_id for c in changes],
             [str(c.old) for c in changes], [str(c.new) for c in changes],
             [c.reason for c in changes], [c.sent for c in changes], [c.at for c in changes],
             [c.accepted_at for c in changes]))
        return cur.rowcount


def stops_due(conn: psycopg.Connection) -> list[tuple[str, str, datetime]]:
    """(broadcast, speaker, expiry) of cancelled deliveries that were published but not stopped."""
    rows = conn.execute(
        "SELECT broadcast_id, device_id, expires_at FROM broadcast_deliveries"  # noqa: S608 - constant
        f" WHERE {_STOP_PENDING} FOR UPDATE SKIP LOCKED").fetchall()
    return [(b, d, e) for b, d, e in rows]


def mark_stopped(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]],
                 at: datetime) -> None:
    """Record that stop commands went out."""
    conn.execute(
        "UPDATE broadcast_deliveries d SET stop_sent_at = %s"
        " FROM unnest(%s::text[], %s::text[]) AS s(broadcast_id, device_id)"
        " WHERE d.broadcast_id = s.broadcast_id AND d.device_id = s.device_id",
        (at, [b for b, _ in pairs], [d for _, d in pairs]))


def online_in_registry(conn: psycopg.Connection, device_ids: Sequence[str]) -> set[str]:
    """Which of these speakers the `device_status` view (fed by ingest) says are online."""
    rows = conn.execute(
        "SELECT device_id FROM device_status WHERE device_id = ANY(%s) AND online",
        (list(device_ids),)).fetchall()
    return {row[0] for row in rows}


def principal_of(name: str, role: str, township: str | None, village: str | None) -> Principal:
    """Rebuild a recorded principal (a schedule fires with its creator's rights)."""
    return Principal(name, Role.from_label(role), Place(township, village))
