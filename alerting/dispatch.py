"""What to send now, and to whom (pure): mute, then deduplicate against what each alert was
already told (repeat interval, escalation), then group, then resolve each group's targets
(receiver, person, language). The dispatch cycle only renders, sends and records the plan."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerting.model import AlertView
from alerting.mute import Silence, muted
from alerting.notifiers.base import Recipient
from alerting.routing import Person, Route, Routing, Rung, ladder, people_at, route_for


@dataclass(frozen=True)
class OpenAlert:
    """An alert that may need a message, with what it was already told."""

    view: AlertView
    labels: dict[str, str]
    created_at: datetime
    notified_level: int
    last_notified_at: datetime | None
    escalated_at: datetime | None
    resolved_notified: bool


@dataclass(frozen=True)
class Target:
    """Where one copy of a notification goes: a receiver, the person it is addressed to
    (None for a group channel such as a chat robot), and the language it is written in."""

    receiver: str
    recipient: Recipient | None
    language: str

    @property
    def who(self) -> str:
        """Whom the message's links are signed for."""
        return self.recipient.person_id if self.recipient else f"receiver:{self.receiver}"


@dataclass(frozen=True)
class Send:
    """One notification: an action, a rung of the ladder, the alerts it lists, and every
    target it goes to."""

    group_key: str
    action: str
    level: int
    route: Route
    alerts: tuple[OpenAlert, ...]
    place: dict[str, str]
    kind: str | None
    targets: tuple[Target, ...]


@dataclass
class Plan:
    """The sends due now, and resolved alerts nobody was told of (closed without a word)."""

    sends: list[Send]
    quiet: list[int]
    muted: dict[int, str]


PLACE_KEYS = ("township", "village", "grid")


def common_place(alerts: Iterable[OpenAlert]) -> dict[str, str]:
    """The deepest place every alert shares (a township outage goes to the township)."""
    place: dict[str, str] = {}
    items = list(alerts)
    for key in PLACE_KEYS:
        values = {a.labels.get(key) for a in items}
        if len(values) != 1 or None in values:
            break
        place[key] = values.pop()  # type: ignore[assignment]
    return place


def _due(alert: OpenAlert, route: Route, rungs: int, now: datetime) -> tuple[str, int] | None:
    if alert.view.state == "resolved":
        return None if alert.resolved_notified else ("resolved", alert.notified_level)
    if alert.view.acknowledged_at is not None:
        return None  # acknowledgement stops repeats and escalation
    if alert.notified_level < 0:
        return "firing", 0
    wait = route.escalate_after_s.get(alert.view.severity)
    since = alert.escalated_at or alert.last_notified_at
    if (wait is not None and since is not None and alert.notified_level + 1 < rungs
            and now >= since + timedelta(seconds=wait)):
        return "escalation", alert.notified_level + 1
    last = alert.last_notified_at
    if last is not None and now >= last + timedelta(seconds=route.repeat_interval_s):
        return "repeat", alert.notified_level
    return None


def targets(rungs: Sequence[Rung], action: str, level: int, route: Route, routing: Routing,
            now: datetime, language: str) -> tuple[Target, ...]:
    """Each on-duty person of the rung (of every rung told, for a resolution) on each of
    their channels, then the route's own receivers."""
    told = rungs[: level + 1] if action == "resolved" else rungs[level: level + 1]
    people: dict[str, Person] = {}
    for rung in told:
        for person in people_at(routing, rung, now):
            people.setdefault(person.id, person)
    return tuple(
        Target(channel, Recipient(p.id, p.name, p.phone, p.email, dict(p.im)),
               p.language or language)
        for p in people.values() for channel in p.channels
    ) + tuple(Target(name, None, language) for name in route.receivers)


def plan(
    alerts: Sequence[OpenAlert], routing: Routing, silences: Sequence[Silence], now: datetime,
    language: str = "zh",
) -> Plan:
    """The notifications due at `now`, grouped by route, action, level and group labels,
    each with its targets (written in `language` unless a person reads another)."""
    firing = [a.labels for a in alerts if a.view.state == "firing"]
    groups: dict[str, tuple[Route, str, int, list[OpenAlert]]] = {}
    result = Plan([], [], {})
    ladders: dict[tuple[str | None, ...], int] = {}  # rungs per place and kind, this pass
    for alert in alerts:
        if alert.view.state == "resolved" and alert.notified_level < 0:
            result.quiet.append(alert.view.alert_id)  # nobody heard it fire: nothing to take back
            continue
        route = route_for(routing.root, alert.labels)
        if alert.view.state == "firing":  # a resolution of what was told is never muted
            reason = "route" if route.mute else muted(alert.labels, now, silences, firing,
                                                      routing.inhibit)
            if reason is not None:
                result.muted[alert.view.alert_id] = reason
                continue
        place_key = (*(alert.labels.get(k) for k in PLACE_KEYS), alert.view.kind)
        if place_key not in ladders:
            ladders[place_key] = len(ladder(alert.labels, alert.view.kind, routing))
        due = _due(alert, route, ladders[place_key], now)
        if due is None:
            continue
        action, level = due
        key = "|".join([route.path, action, str(level),
                        *(alert.labels.get(name) or "" for name in route.group_by)])
        groups.setdefault(key, (route, action, level, []))[3].append(alert)
    for key, (route, action, level, members) in groups.items():
        oldest = min(a.created_at for a in members)
        if action == "firing" and now < oldest + timedelta(seconds=route.group_wait_s):
            continue  # wait for the rest of the group (an outage takes a few passes)
        place = common_place(members)
        kinds = {a.view.kind for a in members}
        kind = kinds.pop() if len(kinds) == 1 else None
        ladder_of_group = tuple(ladder(place, kind, routing))
        members.sort(key=lambda a: (a.view.village or "", a.view.device_id or ""))
        level = min(level, max(len(ladder_of_group) - 1, 0))
        result.sends.append(Send(key, action, level, route, tuple(members), place, kind,
                                 targets(ladder_of_group, action, level, route, routing, now,
                                         language)))
    return result
