"""The pure core of broadcast: scopes, authorization, the delivery state machine, schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from broadcast.delivery import Happening, advance, plan_sends, retry_due
from broadcast.model import BroadcastDenied, BroadcastError, BroadcastRequest, Scope, Speaker
from broadcast.model import DeliveryState as S
from broadcast.schedule import crontab_days, next_cron_fire
from broadcast.scope import authorized_targets, resolve, scope_place
from ground.principal import COUNTY, Place, Principal, Role

SPEAKERS = [
    Speaker("spk-a1", "East", "Apple"),
    Speaker("spk-a2", "East", "Apple"),
    Speaker("spk-b1", "East", "Birch"),
    Speaker("spk-c1", "West", "Cedar"),
    Speaker("spk-old", "West", "Cedar", active=False),
]
GROUPS = {"school": frozenset({"spk-a1", "spk-c1"}), "east-only": frozenset({"spk-b1"})}


@pytest.mark.parametrize(("scope", "expected"), [
    (Scope.county(), ["spk-a1", "spk-a2", "spk-b1", "spk-c1"]),
    (Scope.of_township("East"), ["spk-a1", "spk-a2", "spk-b1"]),
    (Scope.of_village("East", "Apple"), ["spk-a1", "spk-a2"]),
    (Scope.of_speakers("spk-c1", "spk-a1", "spk-c1"), ["spk-c1", "spk-a1"]),
    (Scope.of_group("school"), ["spk-a1", "spk-c1"]),
])
def test_a_scope_resolves_to_its_active_speakers(scope: Scope, expected: list[str]) -> None:
    assert [s.device_id for s in resolve(scope, SPEAKERS, GROUPS)] == expected


@pytest.mark.parametrize(("scope", "message"), [
    (Scope.of_speakers("spk-a1", "nobody"), "not registered speakers: nobody"),
    (Scope.of_speakers("spk-old"), "not registered speakers: spk-old"),
    (Scope.of_group("choir"), "no speaker group named 'choir'"),
    (Scope.of_township("North"), "no active speaker in township North"),
    (Scope.of_village("West", "Apple"), "no active speaker in village West/Apple"),
])
def test_a_scope_that_reaches_nothing_real_is_an_error(scope: Scope, message: str) -> None:
    with pytest.raises(BroadcastError, match=message):
        resolve(scope, SPEAKERS, GROUPS)


@pytest.mark.parametrize("fields", [
    {"kind": "county", "township": "East"},
    {"kind": "township"},
    {"kind": "village", "township": "East"},
    {"kind": "speakers"},
    {"kind": "group", "group": "x", "speakers": ["spk-a1"]},
])
def test_a_scope_with_the_wrong_fields_for_its_kind_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Scope.model_validate(fields)


@pytest.mark.parametrize("fields", [
    {},  # neither text nor audio
    {"text": "x", "audio_url": "https://a/b.mp3"},
    {"text": "x", "expires_in_s": 60, "expires_at": "2026-11-22T08:00:00+08:00"},
    {"text": "x", "volume_pct": 101},
    {"text": "x", "priority": "urgent"},
    {"audio_url": "file:///etc/passwd"},
    {"text": "x", "colour": "red"},
])
def test_a_malformed_request_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BroadcastRequest.model_validate({"scope": {"kind": "county"}, **fields})


EAST_OPERATOR = Principal("east-op", Role.OPERATOR, Place("East"))
APPLE_OPERATOR = Principal("apple-op", Role.OPERATOR, Place("East", "Apple"))
COUNTY_OPERATOR = Principal("county-op", Role.OPERATOR)
EAST_CADRE = Principal("east-cadre", Role.CADRE, Place("East"))


@pytest.mark.parametrize(("principal", "scope", "allowed"), [
    (COUNTY_OPERATOR, Scope.county(), True),
    (EAST_OPERATOR, Scope.county(), False),
    (EAST_OPERATOR, Scope.of_township("East"), True),
    (EAST_OPERATOR, Scope.of_township("West"), False),
    (EAST_OPERATOR, Scope.of_village("East", "Birch"), True),
    (EAST_OPERATOR, Scope.of_speakers("spk-a1", "spk-b1"), True),
    (EAST_OPERATOR, Scope.of_speakers("spk-a1", "spk-c1"), False),
    (EAST_OPERATOR, Scope.of_group("school"), False),  # the group spans two townships
    (EAST_OPERATOR, Scope.of_group("east-only"), True),
    (APPLE_OPERATOR, Scope.of_village("East", "Apple"), True),
    (APPLE_OPERATOR, Scope.of_township("East"), False),
    (APPLE_OPERATOR, Scope.of_speakers("spk-b1"), False),
    (EAST_CADRE, Scope.of_village("East", "Apple"), False),  # not an operator
])
def test_operators_broadcast_only_within_their_scope(principal: Principal, scope: Scope,
                                                     allowed: bool) -> None:
    if allowed:
        assert authorized_targets(principal, scope, SPEAKERS, GROUPS) == resolve(
            scope, SPEAKERS, GROUPS)
    else:
        with pytest.raises(BroadcastDenied):
            authorized_targets(principal, scope, SPEAKERS, GROUPS)


@pytest.mark.parametrize(("scope", "place"), [
    (Scope.county(), COUNTY),
    (Scope.of_township("East"), Place("East")),
    (Scope.of_village("East", "Apple"), Place("East", "Apple")),
    (Scope.of_speakers("spk-a1", "spk-a2"), Place("East", "Apple")),
    (Scope.of_speakers("spk-a1", "spk-b1"), Place("East")),
    (Scope.of_group("school"), COUNTY),
])
def test_a_broadcast_lives_in_the_smallest_place_holding_its_targets(scope: Scope,
                                                                   place: Place) -> None:
    assert scope_place(scope, resolve(scope, SPEAKERS, GROUPS)) == place


H = Happening


@pytest.mark.parametrize(("state", "happening", "after"), [
    (S.QUEUED, H.SEND_ONLINE, S.SENT),
    (S.QUEUED, H.SEND_OFFLINE, S.OFFLINE),
    (S.QUEUED, H.HOLD, S.HELD),
    (S.HELD, H.SEND_ONLINE, S.SENT),
    (S.OFFLINE, H.SEND_ONLINE, S.SENT),  # came back: published again
    (S.SENT, H.SEND_ONLINE, S.SENT),  # a retry
    (S.SENT, H.WENT_OFFLINE, S.OFFLINE),
    (S.SENT, H.HOLD, S.HELD),  # a retry behind a higher priority
    (S.SENT, H.ACK_ACCEPTED, S.ACCEPTED),
    (S.OFFLINE, H.ACK_ACCEPTED, S.ACCEPTED),  # the broker's queued copy reached it
    (S.ACCEPTED, H.ACK_DONE, S.DONE),
    (S.SENT, H.ACK_DONE, S.DONE),
    (S.SENT, H.ACK_REJECTED, S.REJECTED),
    (S.ACCEPTED, H.ACK_FAILED, S.FAILED),
    (S.SENT, H.EXPIRE, S.NO_ANSWER),
    (S.OFFLINE, H.EXPIRE, S.EXPIRED),
    (S.HELD, H.EXPIRE, S.EXPIRED),
    (S.ACCEPTED, H.EXPIRE, None),  # it confirmed: stays accepted
    (S.SENT, H.CANCEL, S.CANCELLED),
    (S.ACCEPTED, H.CANCEL, S.CANCELLED),
    (S.DONE, H.CANCEL, None),
    (S.DONE, H.ACK_ACCEPTED, None),  # a late duplicate ack changes nothing
    (S.CANCELLED, H.ACK_ACCEPTED, None),
    (S.NO_ANSWER, H.ACK_ACCEPTED, None),
    (S.EXPIRED, H.SEND_ONLINE, None),
    (S.ACCEPTED, H.SEND_ONLINE, None),  # never resent once confirmed
    (S.REJECTED, H.SEND_ONLINE, None),
])
def test_delivery_state_machine(state: S, happening: Happening, after: S | None) -> None:
    assert advance(state, happening) == after


def test_plan_holds_lower_priorities_and_sends_the_rest() -> None:
    online = {"a", "b", "c"}.__contains__
    busy = {"a": 2, "b": 0, "d": 2}  # a and d are playing an emergency, b a normal notice
    assert plan_sends(0, ["a", "b", "c", "d", "e"], online, busy) == {
        "a": H.HOLD, "b": H.SEND_ONLINE, "c": H.SEND_ONLINE, "d": H.HOLD, "e": H.SEND_OFFLINE}
    # An emergency goes to everyone at once.
    assert plan_sends(2, ["a", "b", "d", "e"], online, busy) == {
        "a": H.SEND_ONLINE, "b": H.SEND_ONLINE, "d": H.SEND_OFFLINE, "e": H.SEND_OFFLINE}


def test_retry_is_due_after_the_interval() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    interval = timedelta(seconds=10)
    assert retry_due(None, now, interval)
    assert not retry_due(now - timedelta(seconds=9), now, interval)
    assert retry_due(now - timedelta(seconds=10), now, interval)


SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("cron", "after", "expected"), [
    ("0 7 * * *", datetime(2026, 11, 22, 6, 0, tzinfo=SHANGHAI),
     datetime(2026, 11, 22, 7, 0, tzinfo=SHANGHAI)),
    ("0 7 * * *", datetime(2026, 11, 22, 7, 0, tzinfo=SHANGHAI),
     datetime(2026, 11, 23, 7, 0, tzinfo=SHANGHAI)),
    # 07:00 in Shanghai is 23:00 UTC the day before.
    ("0 7 * * *", datetime(2026, 11, 22, 22, 0, tzinfo=UTC),
     datetime(2026, 11, 23, 7, 0, tzinfo=SHANGHAI)),
    ("30 18 * * 1-5", datetime(2026, 11, 21, 12, 0, tzinfo=SHANGHAI),  # a Saturday
     datetime(2026, 11, 23, 18, 30, tzinfo=SHANGHAI)),
])
def test_cron_schedules_fire_in_shanghai_time(cron: str, after: datetime,
                                              expected: datetime) -> None:
    assert next_cron_fire(cron, "Asia/Shanghai", after) == expected


@pytest.mark.parametrize(("field", "names"), [
    ("1-5", "mon,tue,wed,thu,fri"),
    ("0", "sun"),
    ("7", "sun"),
    ("0,6", "sun,sat"),
    ("*/2", "sun,tue,thu,sat"),
    ("mon-fri", "mon-fri"),
    ("*", "*"),
])
def test_crontab_days_count_from_sunday(field: str, names: str) -> None:
    assert crontab_days(field) == names


@pytest.mark.parametrize("cron", ["0 7 * *", "61 7 * * *", "0 7 * * 8", "0 7 * * x-y"])
def test_a_malformed_cron_is_a_value_error(cron: str) -> None:
    with pytest.raises(ValueError):
        next_cron_fire(cron, "Asia/Shanghai", datetime(2026, 11, 22, tzinfo=UTC))
