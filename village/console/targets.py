"""The broadcast target picker: what a user may address, and a picked value as a Scope (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from broadcast.model import Scope
from ground.principal import Place, Principal, Role


@dataclass(frozen=True)
class Target:
    """One choice of the picker: its form value and what it shows."""

    value: str
    label: str
    speakers: int


def choices(principal: Principal, speaker_places: Iterable[tuple[Place, int]],
            groups: Iterable[str]) -> list[Target]:
    """Every place (and group) holding speakers that the principal may broadcast to: the
    county, townships and villages wholly within their scope; groups (checked when sent)."""
    places = list(speaker_places)
    if principal.role < Role.OPERATOR:
        return []
    found: list[Target] = []
    if principal.scope.township is None:
        found.append(Target("county", "county", sum(n for _, n in places)))
    townships: dict[str, int] = {}
    for place, count in places:
        if place.township is not None:
            townships[place.township] = townships.get(place.township, 0) + count
    if principal.scope.village is None:
        found += [Target(f"township:{t}", f"township {t}", n) for t, n in sorted(townships.items())
                  if principal.covers(Place(t))]
    found += [Target(f"village:{p.township}/{p.village}", f"village {p.label()}", n)
              for p, n in sorted(places, key=lambda pn: pn[0].label())
              if p.township is not None and principal.covers(p)]
    found += [Target(f"group:{g}", f"group {g}", 0) for g in sorted(groups)]
    return found


def scope_of(value: str, speakers: str = "") -> Scope:
    """The Scope a picked value stands for (`speakers`: ids for a speakers choice);
    ValueError if it is not one."""
    kind, _, rest = value.partition(":")
    if kind == "county":
        return Scope.county()
    if kind == "township" and rest:
        return Scope.of_township(rest)
    if kind == "village" and "/" in rest:
        township, village = rest.split("/", 1)
        return Scope.of_village(township, village)
    if kind == "group" and rest:
        return Scope.of_group(rest)
    if kind == "speakers":
        ids = [s for s in speakers.replace(",", " ").split() if s]
        if ids:
            return Scope.of_speakers(*ids)
        raise ValueError("list the speakers' ids")
    raise ValueError(f"unknown target {value!r}")
