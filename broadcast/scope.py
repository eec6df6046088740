"""Which speakers a scope reaches, and whether a principal may broadcast there (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from broadcast.model import BroadcastDenied, BroadcastError, Scope, ScopeKind, Speaker
from ground.principal import COUNTY, Place, Principal, Role

Resolver = Callable[[Scope, list[Speaker], Mapping[str, frozenset[str]]], list[Speaker]]


def _listed(scope: Scope, speakers: list[Speaker],
            groups: Mapping[str, frozenset[str]]) -> list[Speaker]:
    by_id = {speaker.device_id: speaker for speaker in speakers}
    unknown = sorted(set(scope.speakers) - by_id.keys())
    if unknown:
        raise BroadcastError(f"not registered speakers: {', '.join(unknown[:10])}")
    return [by_id[device_id] for device_id in dict.fromkeys(scope.speakers)]


def _in_group(scope: Scope, speakers: list[Speaker],
              groups: Mapping[str, frozenset[str]]) -> list[Speaker]:
    assert scope.group is not None
    members = groups.get(scope.group)
    if members is None:
        raise BroadcastError(f"no speaker group named {scope.group!r}")
    return [speaker for speaker in speakers if speaker.device_id in members]


def _in_township(scope: Scope, speakers: list[Speaker],
                 groups: Mapping[str, frozenset[str]]) -> list[Speaker]:
    return [speaker for speaker in speakers if speaker.township == scope.township]


def _in_village(scope: Scope, speakers: list[Speaker],
                groups: Mapping[str, frozenset[str]]) -> list[Speaker]:
    return [speaker for speaker in speakers
            if speaker.township == scope.township and speaker.village == scope.village]


def _everyone(scope: Scope, speakers: list[Speaker],
              groups: Mapping[str, frozenset[str]]) -> list[Speaker]:
    return list(speakers)


_RESOLVERS: dict[ScopeKind, Resolver] = {
    ScopeKind.SPEAKERS: _listed,
    ScopeKind.GROUP: _in_group,
    ScopeKind.TOWNSHIP: _in_township,
    ScopeKind.VILLAGE: _in_village,
    ScopeKind.COUNTY: _everyone,
}


def resolve(scope: Scope, speakers: Iterable[Speaker],
            groups: Mapping[str, frozenset[str]]) -> list[Speaker]:
    """The active speakers a scope reaches; BroadcastError if it names unknowns or none."""
    active = [speaker for speaker in speakers if speaker.active]
    targets = _RESOLVERS[scope.kind](scope, active, groups)
    if not targets:
        raise BroadcastError(f"no active speaker in {scope.label()}")
    return targets


def scope_place(scope: Scope, targets: Iterable[Speaker]) -> Place:
    """The smallest place containing the scope and all its targets."""
    if scope.kind is ScopeKind.COUNTY:
        return COUNTY
    places = {(speaker.township, speaker.village) for speaker in targets}
    townships = {township for township, _ in places}
    if len(townships) != 1:
        return COUNTY
    township = townships.pop()
    if township is None:
        return COUNTY
    villages = {village for _, village in places}
    if len(villages) == 1 and scope.kind is not ScopeKind.TOWNSHIP:
        return Place(township, villages.pop())
    return Place(township)


def authorized_targets(principal: Principal, scope: Scope, speakers: Iterable[Speaker],
                       groups: Mapping[str, frozenset[str]]) -> list[Speaker]:
    """The speakers a principal's broadcast to a scope reaches, authorized before anything
    is looked up: BroadcastDenied unless it is an operator over the scope and every target.

    A principal below the county learns nothing of what lies outside its scope: a speaker,
    group or place there is refused exactly as one that does not exist, and a refusal names
    only what the principal asked for. (BroadcastError, for an empty or unknown scope, is
    only ever about what the principal may see.)
    """
    if principal.role < Role.OPERATOR:
        raise BroadcastDenied(f"{principal.name} is not an operator")
    claimed = {
        ScopeKind.COUNTY: COUNTY,
        ScopeKind.TOWNSHIP: Place(scope.township),
        ScopeKind.VILLAGE: Place(scope.township, scope.village),
    }.get(scope.kind)
    if claimed is not None and not principal.covers(claimed):
        raise BroadcastDenied(f"{principal.name} may not broadcast to {scope.label()}")
    if principal.covers(COUNTY):
        return resolve(scope, speakers, groups)
    outside = set()
    mine = []
    for speaker in speakers:
        if principal.may(Role.OPERATOR, Place(speaker.township, speaker.village)):
            mine.append(speaker)
        else:
            outside.add(speaker.device_id)
    if scope.kind is ScopeKind.SPEAKERS:
        refused = sorted(set(scope.speakers) - {speaker.device_id for speaker in mine})
        if refused:
            raise BroadcastDenied(f"{principal.name} may not broadcast to these speakers: "
                                  f"{', '.join(refused[:10])}")
    if scope.kind is ScopeKind.GROUP:
        assert scope.group is not None
        members = groups.get(scope.group)
        if members is None or members & outside:
            raise BroadcastDenied(f"{principal.name} may not broadcast to group {scope.group!r}")
    return resolve(scope, mine, groups)


