"""People, receivers, the route tree and inhibition as strict YAML (pure).

Children of a route inherit every option they do not set (Alertmanager's route tree). The
people ladder (grid, village, township, county bureau) gives who hears first and who next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerting.notifiers.broadcast import BroadcastConfig
from alerting.notifiers.console import ConsoleConfig
from alerting.notifiers.email import EmailConfig
from alerting.notifiers.robots import RobotConfig
from alerting.notifiers.sms import SmsConfig
from alerting.notifiers.webhook import WebhookConfig
from alerting.rules import SEVERITIES, parse_duration
from ground.validation import first_error

Level = Literal["grid", "village", "township", "county"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

RECEIVER_CONFIGS: dict[str, type[BaseModel]] = {
    "webhook": WebhookConfig, "sms": SmsConfig, "wecom": RobotConfig,
    "dingtalk": RobotConfig, "feishu": RobotConfig, "email": EmailConfig,
    "broadcast": BroadcastConfig, "console": ConsoleConfig,
}

# Which county bureau watches which kinds (domain: water, agriculture, public security,
# emergency management).
DEFAULT_BUREAUS: dict[str, list[str]] = {
    "water": ["water_meter", "water_quality"],
    "agriculture": ["barn"],
    "public_security": ["camera"],
    "emergency": ["speaker", "gateway"],
}


class RoutingError(ValueError):
    """A routing file that cannot be used; the message names the entry and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Shift(_Strict):
    """An on-duty period in local time on some days (`to` before `from` spans midnight)."""

    days: tuple[str, ...] = DAYS
    start: time = Field(alias="from")
    end: time = Field(alias="to")

    @field_validator("days")
    @classmethod
    def _days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in value if d not in DAYS]
        if bad:
            raise ValueError(f"unknown day {bad[0]!r}; use {', '.join(DAYS)}")
        return value

    def covers(self, local: datetime) -> bool:
        """Whether a local time falls in this shift."""
        day, now = DAYS[local.weekday()], local.time()
        if self.start <= self.end:
            return day in self.days and self.start <= now < self.end
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and now >= self.start) or (yesterday in self.days and now < self.end)


class Attachment(_Strict):
    """Where in the hierarchy a person answers: a grid, a village, a township or a bureau."""

    level: Level
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    bureau: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Attachment:
        needed = {"grid": ("township", "village", "grid"), "village": ("township", "village"),
                  "township": ("township",), "county": ("bureau",)}[self.level]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.level} attachment needs {', '.join(missing)}")
        return self


class Person(_Strict):
    """Someone who is told: contacts, where they answer, when they are on duty, how."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str
    phone: str | None = None
    email: str | None = None
    im: dict[str, str] = Field(default_factory=dict)
    language: Literal["zh", "en"] | None = None
    channels: tuple[str, ...] = Field(min_length=1)
    attached: tuple[Attachment, ...] = Field(min_length=1)
    on_duty: tuple[Shift, ...] = ()

    def on_duty_at(self, local: datetime) -> bool:
        """Whether this person is on duty (always, if no shifts are given)."""
        return not self.on_duty or any(shift.covers(local) for shift in self.on_duty)


class Receiver(_Strict):
    """A configured channel: its type and that type's options."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    type: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _options(self) -> Receiver:
        model = RECEIVER_CONFIGS.get(self.type)
        if model is None:
            raise ValueError(f"unknown receiver type {self.type!r}; known: {', '.join(RECEIVER_CONFIGS)}")
        model.model_validate(self.options)
        return self

    def config(self) -> BaseModel:
        """The typed options of this receiver's type."""
        return RECEIVER_CONFIGS[self.type].model_validate(self.options)


class RouteModel(_Strict):
    """A node of the route tree as written; unset options come from the parent."""

    match: dict[str, str] = Field(default_factory=dict)
    receivers: tuple[str, ...] | None = None
    group_by: tuple[str, ...] | None = None
    group_wait: float | None = None
    repeat_interval: float | None = None
    escalate_after: dict[str, float | None] | None = None
    mute: bool | None = None
    routes: tuple[RouteModel, ...] = ()

    @field_validator("group_wait", "repeat_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)

    @field_validator("escalate_after", mode="before")
    @classmethod
    def _escalations(cls, value: object) -> dict[str, float | None] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("a mapping from severity to a duration (or null: never)")
        bad = [key for key in value if key not in SEVERITIES]
        if bad:
            raise ValueError(f"unknown severity {bad[0]!r}")
        return {k: None if v is None else parse_duration(v) for k, v in value.items()}


@dataclass(frozen=True)
class Route:
    """A resolved route: every option set (inherited where not given)."""

    path: str
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait_s: float
    repeat_interval_s: float
    escalate_after_s: dict[str, float | None]
    mute: bool
    match: dict[str, str]
    children: tuple[Route, ...]


ROOT_DEFAULTS = RouteModel(
    receivers=(), group_by=("rule", "township", "village"), group_wait=10.0,
    repeat_interval=4 * 3600.0, mute=False,
    escalate_after={"critical": 600.0, "major": 1800.0, "minor": 4 * 3600.0, "info": None},
)


def _resolve(model: RouteModel, parent: Route | None, path: str) -> Route:
    def pick(name: str) -> Any:
        own = getattr(model, name)
        return own if own is not None else getattr(parent, _ROUTE_FIELD[name])
    escalate = dict(parent.escalate_after_s) if parent else {}
    escalate.update(model.escalate_after or {})
    node = Route(path, pick("receivers"), pick("group_by"), pick("group_wait"),
                 pick("repeat_interval"), escalate, pick("mute"), dict(model.match), ())
    children = tuple(_resolve(child, node, f"{path}/{i}") for i, child in enumerate(model.routes))
    return Route(**{**node.__dict__, "children": children})


_ROUTE_FIELD = {"receivers": "receivers", "group_by": "group_by", "group_wait": "group_wait_s",
                "repeat_interval": "repeat_interval_s", "mute": "mute"}


def matches(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether the labels carry every matcher's value (routes, silences, inhibition)."""
    return all(labels.get(key) == value for key, value in matchers.items())


def route_for(root: Route, labels: dict[str, str]) -> Route:
    """The deepest route whose matchers all hold, first matching child first."""
    for child in root.children:
        if matches(child.match, labels):
            return route_for(child, labels)
    return root


class InhibitRule(_Strict):
    """While a source alert fires, targets sharing the `equal` labels are muted."""

    source: dict[str, str]
    target: dict[str, str]
    equal: tuple[str, ...] = Field(min_length=1)


class RoutingModel(_Strict):
    """The whole routing file."""

    timezone: str = "Asia/Shanghai"
    people: tuple[Person, ...] = ()
    receivers: tuple[Receiver, ...] = ()
    route: RouteModel = Field(default_factory=RouteModel)
    inhibit: tuple[InhibitRule, ...] = ()
    bureaus: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_BUREAUS))


@dataclass(frozen=True)
class Routing:
    """Validated routing: people, receivers by name, the resolved tree, inhibition."""

    zone: ZoneInfo
    people: tuple[Person, ...]
    receivers: dict[str, Receiver]
    root: Route
    inhibit: tuple[InhibitRule, ...]
    bureau_of_kind: dict[str, str]


def build_routing(document: object, source: str = "routing") -> Routing:
    """Validate a routing document; RoutingError names the entry and the field."""
    try:
        model = RoutingModel.model_validate(document or {})
    except ValidationError as exc:
        raise RoutingError(f"{source}: {first_error(exc, 'file')}") from None
    names = {r.name for r in model.receivers}
    for i, person in enumerate(model.people):
        for channel in person.channels:
            if channel not in names:
                raise RoutingError(f"{source}: people.{i} ({person.id}): channels: "
                                   f"no receiver named {channel!r}")
    root = _resolve(model.route, _resolve(ROOT_DEFAULTS, None, ""), "")
    stack = [root]
    while stack:
        node = stack.pop()
        for name in node.receivers:
            if name not in names:
                raise RoutingError(f"{source}: route {node.path or '/'}: receivers: "
                                   f"no receiver named {name!r}")
        stack.extend(node.children)
    try:
        zone = ZoneInfo(model.timezone)
    except (KeyError, ValueError):
        raise RoutingError(f"{source}: timezone: unknown zone {model.timezone!r}") from None
    bureau_of_kind = {kind: bureau for bureau, kinds in model.bureaus.items() for kind in kinds}
    return Routing(zone, model.people, {r.name: r for r in model.receivers}, root,
                   model.inhibit, bureau_of_kind)


CONSOLE_ONLY: dict[str, Any] = {
    "receivers": [{"name": "console", "type": "console"}],
    "route": {"receivers": ["console"], "group_wait": "2s",
              "routes": [{"match": {"condition": "stopped"}, "group_by": ["rule", "township"]}]},
    "inhibit": [{"source": {"rule": "gateway-stopped"}, "target": {"condition": "stopped"},
                 "equal": ["gateway"]},
                {"source": {"rule": "area-outage"}, "target": {"condition": "stopped"},
                 "equal": ["township"]}],
}


@dataclass(frozen=True)
class Rung:
    """One step of the escalation ladder: a level and the place at it."""

    level: str
    key: tuple[str | None, ...]


def ladder(place: dict[str, str], kind: str | None, routing: Routing) -> list[Rung]:
    """The rungs from the nearest place up to the county bureau that have anyone on them."""
    township, village, grid = place.get("township"), place.get("village"), place.get("grid")
    rungs = []
    if grid and village:
        rungs.append(Rung("grid", (township, village, grid)))
    if village:
        rungs.append(Rung("village", (township, village)))
    if township:
        rungs.append(Rung("township", (township,)))
    bureau = routing.bureau_of_kind.get(kind or "")
    if bureau:
        rungs.append(Rung("county", (bureau,)))
    return [rung for rung in rungs if _attached(routing, rung)]


def _key(attachment: Attachment) -> tuple[str | None, ...]:
    return {"grid": (attachment.township, attachment.village, attachment.grid),
            "village": (attachment.township, attachment.village),
            "township": (attachment.township,),
            "county": (attachment.bureau,)}[attachment.level]


def _attached(routing: Routing, rung: Rung) -> list[Person]:
    return [p for p in routing.people
            if any(a.level == rung.level and _key(a) == rung.key for a in p.attached)]


def people_at(routing: Routing, rung: Rung, now: datetime) -> list[Person]:
    """Who on this rung is on duty now (everyone on it, if nobody is)."""
    attached = _attached(routing, rung)
    local = now.astimezone(routing.zone)
    on_duty = [p for p in attached if p.on_duty_at(local)]
    return on_duty or attached
