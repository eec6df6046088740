"""The service layer against a real database: records, authorizes, reports, cancels, schedules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from broadcast.model import BroadcastDenied, BroadcastError, BroadcastRequest, NotFound, Scope
from broadcast.schedules import create_schedule, delete_schedule, fire_due, list_schedules
from broadcast.service import (
    cancel_broadcast,
    create_broadcast,
    delivery_report,
    list_broadcasts,
    set_group,
    show_broadcast,
)
from ground.principal import Place, Principal, Role
from tests.broadcast.registry import register_speakers

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
COUNTY_OP = Principal("county-op", Role.OPERATOR)
EAST_OP = Principal("east-op", Role.OPERATOR, Place("East"))
EAST_VIEWER = Principal("east-viewer", Role.VIEWER, Place("East"))
WEST_VIEWER = Principal("west-viewer", Role.VIEWER, Place("West"))


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    register_speakers(database_url, [
        ("spk-e1", "East", "Apple"), ("spk-e2", "East", "Apple"), ("spk-e3", "East", "Birch"),
        ("spk-w1", "West", "Cedar"),
    ])
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def notice(scope: Scope, **fields: object) -> BroadcastRequest:
    return BroadcastRequest.model_validate(
        {"scope": scope.model_dump(), "text": "Meeting at 19:00.", **fields})


def test_a_broadcast_is_recorded_with_one_queued_delivery_per_speaker_and_audited(
        conn: psycopg.Connection) -> None:
    broadcast_id = create_broadcast(conn, notice(Scope.of_township("East"), volume_pct=70),
                                    EAST_OP, NOW)
    report = delivery_report(conn, broadcast_id, EAST_OP, NOW)
    assert (report.speakers, report.confirmed, report.counts) == (3, 0, {"queued": 3})
    assert report.status == "new"
    assert [row["device_id"] for row in report.unconfirmed] == ["spk-e1", "spk-e2", "spk-e3"]
    assert report.expires_at == NOW + timedelta(hours=1)
    audit = conn.execute(
        "SELECT actor, actor_role, action, broadcast_id, detail->>'scope',"
        " (detail->>'speakers')::int, detail->>'what', detail->>'actor_scope'"
        " FROM broadcast_audit").fetchall()
    assert audit == [("east-op", "operator", "broadcast", broadcast_id, "township East", 3,
                      "Meeting at 19:00.", "East")]


def test_a_township_operator_cannot_broadcast_outside_the_township(
        conn: psycopg.Connection) -> None:
    for scope in (Scope.county(), Scope.of_township("West"), Scope.of_village("West", "Cedar"),
                  Scope.of_speakers("spk-e1", "spk-w1")):
        with pytest.raises(BroadcastDenied):
            create_broadcast(conn, notice(scope), EAST_OP, NOW)
    assert conn.execute("SELECT count(*) FROM broadcasts").fetchone() == (0,)
    create_broadcast(conn, notice(Scope.county()), COUNTY_OP, NOW)


def test_groups_are_scopes_and_follow_the_same_rules(conn: psycopg.Connection) -> None:
    set_group(conn, "river", ["spk-e1", "spk-e3"], EAST_OP, NOW)
    broadcast_id = create_broadcast(conn, notice(Scope.of_group("river")), EAST_OP, NOW)
    assert delivery_report(conn, broadcast_id, EAST_OP, NOW).speakers == 2
    with pytest.raises(BroadcastDenied):
        set_group(conn, "river", ["spk-e1", "spk-w1"], EAST_OP, NOW)
    set_group(conn, "mixed", ["spk-e1", "spk-w1"], COUNTY_OP, NOW)
    with pytest.raises(BroadcastDenied):
        create_broadcast(conn, notice(Scope.of_group("mixed")), EAST_OP, NOW)
    with pytest.raises(BroadcastDenied):  # nor may it delete a group reaching elsewhere
        set_group(conn, "mixed", [], EAST_OP, NOW)
    with pytest.raises(BroadcastError, match="no speaker group named 'choir'"):
        create_broadcast(conn, notice(Scope.of_group("choir")), COUNTY_OP, NOW)
    # Below the county, a group that does not exist is refused as one reaching elsewhere.
    with pytest.raises(BroadcastDenied, match="may not broadcast to group 'choir'"):
        create_broadcast(conn, notice(Scope.of_group("choir")), EAST_OP, NOW)


def test_unknown_speakers_and_past_expiry_are_clear_errors(conn: psycopg.Connection) -> None:
    with pytest.raises(BroadcastError, match="not registered speakers: spk-zz"):
        create_broadcast(conn, notice(Scope.of_speakers("spk-zz")), COUNTY_OP, NOW)
    with pytest.raises(BroadcastError, match="expire before"):
        create_broadcast(conn, notice(Scope.county(), expires_at=NOW - timedelta(seconds=1)),
                         COUNTY_OP, NOW)


def test_who_sees_and_who_cancels(conn: psycopg.Connection) -> None:
    east = create_broadcast(conn, notice(Scope.of_village("East", "Birch")), EAST_OP, NOW)
    county = create_broadcast(conn, notice(Scope.county()), COUNTY_OP, NOW)
    assert {r.broadcast_id for r in list_broadcasts(conn, EAST_VIEWER, NOW)} == {east, county}
    assert {r.broadcast_id for r in list_broadcasts(conn, WEST_VIEWER, NOW)} == {county}
    with pytest.raises(NotFound):
        show_broadcast(conn, east, WEST_VIEWER, NOW)
    with pytest.raises(BroadcastDenied):
        cancel_broadcast(conn, east, EAST_VIEWER, NOW)
    with pytest.raises(BroadcastDenied):
        cancel_broadcast(conn, county, EAST_OP, NOW)
    detail = show_broadcast(conn, east, EAST_VIEWER, NOW)
    assert (detail.broadcast.text, detail.broadcast.scope_label) == (
        "Meeting at 19:00.", "village East/Birch")
    report = cancel_broadcast(conn, east, EAST_OP, NOW + timedelta(seconds=5))
    assert (report.status, report.counts) == ("cancelled", {"cancelled": 1})
    assert delivery_report(conn, county, EAST_VIEWER, NOW + timedelta(hours=2)).status == "expired"


def test_a_one_off_schedule_fires_once_and_a_cron_schedule_moves_on(
        conn: psycopg.Connection) -> None:
    once = create_schedule(conn, notice(Scope.of_township("East"), expires_in_s=600), EAST_OP,
                           NOW, name="once", at=NOW + timedelta(minutes=5))
    daily = create_schedule(conn, notice(Scope.county()), COUNTY_OP, NOW, name="daily news",
                            cron="0 7 * * *")  # 07:00 Shanghai = 23:00 UTC
    assert fire_due(conn, NOW + timedelta(minutes=4)) == []
    fired = fire_due(conn, NOW + timedelta(minutes=6))
    assert len(fired) == 1
    assert fire_due(conn, NOW + timedelta(minutes=7)) == []
    assert delivery_report(conn, fired[0], EAST_OP, NOW).speakers == 3
    rows = {row.schedule_id: row for row in list_schedules(conn, COUNTY_OP)}
    assert rows[once].next_fire_at is None and rows[once].last_broadcast_id == fired[0]
    assert rows[daily].next_fire_at == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    # A daemon down for three days fires the daily news once, then moves to the next morning.
    later = datetime(2026, 11, 25, 23, 0, 30, tzinfo=UTC)
    assert len(fire_due(conn, later)) == 0  # the 22nd's run would long have expired: skipped
    row = {r.schedule_id: r for r in list_schedules(conn, COUNTY_OP)}[daily]
    assert row.next_fire_at == datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    assert len(fire_due(conn, datetime(2026, 11, 26, 23, 0, 2, tzinfo=UTC))) == 1
    assert [r.schedule_id for r in list_schedules(conn, EAST_VIEWER)] == [once, daily]
    assert [r.schedule_id for r in list_schedules(conn, WEST_VIEWER)] == [daily]
    with pytest.raises(BroadcastDenied):
        delete_schedule(conn, daily, EAST_OP, NOW)
    delete_schedule(conn, daily, COUNTY_OP, NOW)
    assert [r.schedule_id for r in list_schedules(conn, COUNTY_OP)] == [once]
    actions = [a for (a,) in conn.execute("SELECT action FROM broadcast_audit ORDER BY id")]
    assert actions == ["schedule", "schedule", "broadcast", "fire", "fire", "broadcast", "fire",
                       "unschedule"]


def test_schedules_refuse_bad_cron_and_absolute_expiry(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="crontab"):
        create_schedule(conn, notice(Scope.county()), COUNTY_OP, NOW, name="x", cron="7 * *")
    with pytest.raises(BroadcastError, match="expires_in_s"):
        create_schedule(conn, notice(Scope.county(), expires_at=NOW + timedelta(hours=1)),
                        COUNTY_OP, NOW, name="x", cron="0 7 * * *")
    with pytest.raises(BroadcastDenied):
        create_schedule(conn, notice(Scope.county()), EAST_OP, NOW, name="x", cron="0 7 * * *")
    assert list_schedules(conn, COUNTY_OP) == []  # none of the refused ones was recorded


def test_a_schedule_that_can_no_longer_fire_is_recorded_and_moves_on(
        conn: psycopg.Connection) -> None:
    gone = create_schedule(conn, notice(Scope.of_speakers("spk-w1")), COUNTY_OP, NOW,
                           name="to a speaker since retired", at=NOW + timedelta(minutes=1))
    broken = create_schedule(conn, notice(Scope.county()), COUNTY_OP, NOW,
                             name="edited by hand", at=NOW + timedelta(minutes=1))
    conn.execute("UPDATE devices SET lifecycle = 'retired' WHERE device_id = 'spk-w1'")
    conn.execute("UPDATE broadcast_schedules SET request = request - 'text'"
                 " WHERE schedule_id = %s", (broken,))
    assert fire_due(conn, NOW + timedelta(minutes=2)) == []
    failures = conn.execute(
        "SELECT schedule_id, detail->>'failed' FROM broadcast_audit WHERE action = 'fire'"
        " ORDER BY schedule_id").fetchall()
    assert failures[0] == (gone, "not registered speakers: spk-w1")
    assert failures[1][0] == broken and "text or audio_url" in failures[1][1]
    assert fire_due(conn, NOW + timedelta(minutes=3)) == []  # each fired (and failed) once


def test_the_report_view_says_who_what_when_where_and_the_outcome(
        conn: psycopg.Connection) -> None:
    b = create_broadcast(conn, notice(Scope.of_village("East", "Apple"), priority="alert"),
                         EAST_OP, NOW)
    row = conn.execute(
        "SELECT created_by, creator_role, what, created_at, scope_label, priority, speakers,"
        " confirmed, queued FROM broadcast_report WHERE broadcast_id = %s", (b,)).fetchone()
    assert row == ("east-op", "operator", "Meeting at 19:00.", NOW, "village East/Apple",
                   "alert", 2, 0, 2)
