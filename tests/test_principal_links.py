"""Scopes and signed links: pure tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ground.links import (
    LinkError,
    LinkExpired,
    LinkGrant,
    alert_link,
    sign_link_token,
    verify_link_token,
)
from ground.principal import COUNTY, Place, Principal, Role

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("principal", "needed", "place", "allowed"),
    [
        (Principal("a", Role.ADMIN), Role.OPERATOR, Place("T1", "V1"), True),
        (Principal("op", Role.OPERATOR, Place("T1")), Role.OPERATOR, Place("T1", "V9"), True),
        (Principal("op", Role.OPERATOR, Place("T1")), Role.OPERATOR, Place("T2", "V1"), False),
        (Principal("op", Role.OPERATOR, Place("T1")), Role.OPERATOR, COUNTY, False),
        (Principal("c", Role.CADRE, Place("T1", "V1")), Role.CADRE, Place("T1", "V1"), True),
        (Principal("c", Role.CADRE, Place("T1", "V1")), Role.CADRE, Place("T1", "V2"), False),
        (Principal("c", Role.CADRE, Place("T1", "V1")), Role.OPERATOR, Place("T1", "V1"), False),
        (Principal("v", Role.VIEWER), Role.CADRE, Place("T1", "V1"), False),
    ],
)
def test_roles_and_scopes(principal: Principal, needed: Role, place: Place, allowed: bool) -> None:
    assert principal.may(needed, place) is allowed


EAST = Principal("east-op", Role.OPERATOR, Place("East"))
APPLE = Principal("apple-op", Role.OPERATOR, Place("East", "Apple"))


@pytest.mark.parametrize(("principal", "place", "sees"), [
    (EAST, COUNTY, True),
    (EAST, Place("East", "Apple"), True),
    (EAST, Place("West"), False),
    (APPLE, Place("East"), True),
    (APPLE, Place("East", "Birch"), False),
    (Principal("county-op", Role.OPERATOR), Place("West", "Cedar"), True),
])
def test_who_sees_what_touches_their_scope(principal: Principal, place: Place, sees: bool) -> None:
    assert principal.overlaps(place) is sees


def test_a_signed_link_round_trips_and_expires() -> None:
    secret = b"k" * 32
    grant = LinkGrant(42, "p-7", NOW + timedelta(hours=24))
    token = sign_link_token(secret, grant)
    assert verify_link_token(secret, token, NOW) == grant
    with pytest.raises(LinkExpired):
        verify_link_token(secret, token, NOW + timedelta(hours=25))
    assert alert_link("http://x/", secret, grant) == f"http://x/a/{token}"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: "x" + t,
    lambda t: t.split(".")[0],
    lambda t: "",
])
def test_an_altered_link_is_refused(mangle: Callable[[str], str]) -> None:
    token = sign_link_token(b"k" * 32, LinkGrant(42, "p-7", NOW + timedelta(hours=1)))
    with pytest.raises(LinkError):
        verify_link_token(b"k" * 32, mangle(token), NOW)


def test_a_link_signed_with_another_secret_is_refused() -> None:
    token = sign_link_token(b"a" * 32, LinkGrant(1, "p", NOW + timedelta(hours=1)))
    with pytest.raises(LinkError):
        verify_link_token(b"b" * 32, token, NOW)


def test_roles_and_places_are_written_as_people_read_them() -> None:
    assert [role.label for role in Role] == ["viewer", "cadre", "operator", "admin"]
    assert all(Role.from_label(role.label) is role for role in Role)
    assert [place.label() for place in (COUNTY, Place("东镇"), Place("东镇", "李村"))] == [
        "county", "东镇", "东镇/李村"]
