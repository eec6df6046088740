"""The broadcast target picker offers only what the user may address (pure)."""

from __future__ import annotations

import pytest

from broadcast.model import Scope
from ground.principal import Place, Principal, Role
from village.console.targets import choices, scope_of

SPEAKERS = [(Place("east", "east-1"), 3), (Place("east", "east-2"), 2), (Place("west", "west-1"), 4)]


@pytest.mark.parametrize(("principal", "values"), [
    (Principal("a", Role.ADMIN), ["county", "township:east", "township:west", "village:east/east-1",
                                  "village:east/east-2", "village:west/west-1", "group:school"]),
    (Principal("o", Role.OPERATOR, Place("east")),
     ["township:east", "village:east/east-1", "village:east/east-2", "group:school"]),
    (Principal("v", Role.OPERATOR, Place("east", "east-2")), ["village:east/east-2", "group:school"]),
    (Principal("c", Role.CADRE, Place("east", "east-1")), []),
])
def test_the_picker_offers_what_the_scope_may_address(principal: Principal,
                                                      values: list[str]) -> None:
    assert [c.value for c in choices(principal, SPEAKERS, ["school"])] == values


def test_the_county_choice_counts_every_speaker() -> None:
    county = choices(Principal("a", Role.ADMIN), SPEAKERS, [])[0]
    assert (county.value, county.speakers) == ("county", 9)


@pytest.mark.parametrize(("value", "speakers", "scope"), [
    ("county", "", Scope.county()),
    ("township:east", "", Scope.of_township("east")),
    ("village:east/east-1", "", Scope.of_village("east", "east-1")),
    ("group:school", "", Scope.of_group("school")),
    ("speakers", "spk-1, spk-2", Scope.of_speakers("spk-1", "spk-2")),
])
def test_a_picked_value_is_the_scope_it_names(value: str, speakers: str, scope: Scope) -> None:
    assert scope_of(value, speakers) == scope


@pytest.mark.parametrize("value", ["", "township:", "village:east", "speakers", "planet:mars"])
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        scope_of(value)
